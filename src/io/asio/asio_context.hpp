// The factory of the Boost.Asio backend. Kept free of Asio headers so that including it costs nothing.
#pragma once

#include <memory>

#include "connect/io/backend.hpp"

namespace cproxy::io {

std::unique_ptr<context> make_asio_context();

}  // namespace cproxy::io
