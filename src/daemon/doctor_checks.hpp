// The checks of `connect proxy doctor`, each a small function returning its lines. Private to
// doctor_command.cpp; the texts are in docs/control-plane.md "Doctor".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "connect/config/proxy_options.hpp"
#include "connect/daemon/state_file.hpp"
#include "connect/route/table.hpp"

namespace cproxy::control::doctor {

enum class level { ok, warn, fail };

struct finding {
  std::string check;  // "proxy", "upstream", "resolve", "ca", "trust", "io", "port"
  level what = level::ok;
  std::string message;  // without the "[ok] " mark
  std::string fix;      // "" when there is nothing to do
};

// What the checks look at, gathered once.
struct facts {
  std::string home;
  std::string shown_home;  // ~/.privateconnect for the default home
  std::uint16_t port = 0;  // the running proxy's, else the one `start` would take
  std::string bind;
  std::optional<proxy_state> running;
  // Not running, but the state file names a process that holds the port: a proxy that no longer answers
  // (stopped, hung). Then `running` is empty and this is set.
  std::optional<proxy_state> silent;
  std::string status;  // the running proxy's status object
  std::vector<route::route> routes;
  std::vector<std::string> domains;
  io::backend_choice io = io::backend_choice::automatic;
};

finding check_proxy(const facts& f);
std::vector<finding> check_upstreams(const facts& f);
std::vector<finding> check_names(const facts& f);
std::vector<finding> check_ca_and_trust(const facts& f);
finding check_io(const facts& f);
finding check_port(const facts& f);

}  // namespace cproxy::control::doctor
