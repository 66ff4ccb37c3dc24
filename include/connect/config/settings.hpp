// settings: what the proxy runs with, from the command line, then the config file, then defaults
// (the command line wins).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "connect/config/proxy_options.hpp"
#include "connect/proxy/server.hpp"
#include "connect/route/table.hpp"

namespace cproxy::control {

struct settings {
  std::string home;  // the home folder (PRIVATECONNECT_HOME or ~/.privateconnect)
  std::uint16_t port = 3456;
  std::string bind = "127.0.0.1";
  std::string hub = "https://hub.privateconnect.co";
  std::vector<std::string> domains;
  bool quiet = false;
  bool https = false;
  proxy::timeouts timeouts;
  std::vector<route::route> config_routes;
  inspect::options inspect;  // the request inspector ("inspect" in the config file)
};

// Reads the config file (--config strictly, else the home config.json leniently). Returns an error
// text for exit 1, or "" with `warnings` to log.
std::string resolve_settings(const proxy_options& options, settings& out, std::vector<std::string>& warnings);

}  // namespace cproxy::control
