// `connect proxy doctor [--json]`: what stands between a developer and http://NAME.localhost:PORT, one
// check per line with its fix (docs/control-plane.md "Doctor"). Reads and probes; changes nothing.
#pragma once

#include "connect/config/proxy_options.hpp"

namespace cproxy::control {

// Prints the report (or, with `as_json`, one JSON object) and returns 0 when no check failed, else 1.
int run_doctor(bool as_json, const proxy_options& options);

}  // namespace cproxy::control
