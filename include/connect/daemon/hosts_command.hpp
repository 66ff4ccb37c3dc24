// `connect proxy hosts [--remove]`: the connect-proxy block of /etc/hosts (or of the file HOSTS_FILE
// names), so that every program's resolver finds NAME.localhost, not only browsers and curl.
#pragma once

#include "connect/config/proxy_options.hpp"

namespace cproxy::control {

// Prints the outcome (docs/control-plane.md "Name resolution") and returns the exit code: 0 written or
// already as asked, 1 when the file cannot be read or written or its markers are broken.
int run_hosts(bool remove, const proxy_options& options);

}  // namespace cproxy::control
