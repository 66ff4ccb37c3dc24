// The version `connect --version` prints and the status object reports.
#pragma once

namespace cproxy::control {
inline constexpr const char* version = CONNECT_VERSION;
}
