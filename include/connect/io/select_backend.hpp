// Choosing the io backend: `--io auto|uring|asio` or CONNECT_PROXY_IO. `auto` probes io_uring (the
// kernel.io_uring_disabled sysctl, io_uring_setup itself, the opcodes we need) and falls back to asio.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "connect/io/backend.hpp"

namespace cproxy::io {

enum class backend_choice { automatic, uring, asio };
std::optional<backend_choice> parse_backend_choice(std::string_view text);

struct backend_decision {
  backend_kind kind = backend_kind::asio;
  std::string fallback_reason;  // why `auto` did not pick uring; empty when it did or was not asked
};

// Empty string when io_uring is usable here, else the reason it is not.
std::string probe_uring();

// `uring` requested but unusable: returns nullopt and sets `error` to the reason.
std::optional<backend_decision> decide_backend(backend_choice choice, std::string& error);

// Creates a context on the calling thread, which must be the one that runs it.
std::unique_ptr<context> make_context(backend_kind kind);

}  // namespace cproxy::io
