// Implementation of connect/daemon/doctor_command.hpp: gathers the facts once (settings, the running
// proxy, the routes), runs the checks in the contract's order and prints them, or one JSON object.
#include "connect/daemon/doctor_command.hpp"

#include <boost/json.hpp>
#include <cstdlib>
#include <iostream>

#include "connect/config/settings.hpp"
#include "connect/daemon/current_routes.hpp"
#include "connect/daemon/port_owner.hpp"
#include "connect/io/endpoint.hpp"
#include "doctor_checks.hpp"

namespace cproxy::control {
namespace {

using doctor::finding;
using doctor::level;

// The home folder as the contract prints it: ~/.privateconnect when it is the default.
std::string shown_home(const std::string& home) {
  const char* custom = std::getenv("PRIVATECONNECT_HOME");
  const char* user_home = std::getenv("HOME");
  if ((!custom || !*custom) && user_home && home == std::string(user_home) + "/.privateconnect")
    return "~/.privateconnect";
  return home;
}

const char* mark(level l) {
  return l == level::ok ? "[ok]" : l == level::warn ? "[!]" : "[x]";
}

const char* status_word(level l) {
  return l == level::ok ? "ok" : l == level::warn ? "warn" : "fail";
}

// What every check reads, gathered once: the settings, the running (or silent) proxy, the routes.
doctor::facts gather_facts(const settings& s, const proxy_options& options) {
  doctor::facts f;
  f.home = s.home;
  f.shown_home = shown_home(s.home);
  f.port = s.port;
  f.bind = s.bind;
  f.domains = s.domains;
  f.io = options.io;
  if (!s.home.empty()) f.running = running_proxy(s.home, &f.status);
  if (f.running) {
    f.port = f.running->port;
    if (!f.running->bind.empty()) f.bind = f.running->bind;
  } else if (const auto named = s.home.empty() ? std::nullopt : read_state(s.home); named && named->pid > 0) {
    // Only the kernel's word counts: the process the file names must be the port's listener.
    const auto where = io::endpoint::from(named->bind.empty() ? f.bind : named->bind, named->port);
    const auto owner = where ? find_listener(*where) : std::nullopt;
    if (owner && owner->pid == named->pid) {
      f.silent = named;
      f.port = named->port;
      if (!named->bind.empty()) f.bind = named->bind;
    }
  }
  f.routes = current_routes(s, f.status);
  return f;
}

// The checks in the contract's order.
std::vector<finding> run_checks(const doctor::facts& f) {
  std::vector<finding> all;
  all.push_back(doctor::check_proxy(f));
  for (auto& x : doctor::check_upstreams(f)) all.push_back(std::move(x));
  for (auto& x : doctor::check_names(f)) all.push_back(std::move(x));
  for (auto& x : doctor::check_ca_and_trust(f)) all.push_back(std::move(x));
  all.push_back(doctor::check_io(f));
  all.push_back(doctor::check_port(f));
  return all;
}

void print_json(const std::vector<finding>& all, std::size_t problems) {
  boost::json::array checks;
  for (const finding& x : all) {
    boost::json::object o;
    o["check"] = x.check;
    o["status"] = status_word(x.what);
    o["message"] = x.message;
    if (x.fix.empty()) {
      o["fix"] = nullptr;
    } else {
      o["fix"] = x.fix;
    }
    checks.push_back(std::move(o));
  }
  boost::json::object out;
  out["ok"] = problems == 0;
  out["problems"] = problems;
  out["checks"] = std::move(checks);
  std::cout << boost::json::serialize(out) << "\n";
}

void print_text(const std::vector<finding>& all, std::size_t problems) {
  std::cout << "🩺 Proxy doctor\n\n";
  for (const finding& x : all)
    std::cout << "  " << mark(x.what) << " " << x.message << (x.fix.empty() ? "" : " — " + x.fix) << "\n";
  if (problems == 0) {
    std::cout << "\n[ok] No problems found\n";
  } else {
    std::cout << "\n[x] " << problems << " problem(s) found\n";
  }
}

}  // namespace

int run_doctor(bool as_json, const proxy_options& options) {
  settings s;
  std::vector<std::string> warnings;
  if (const std::string error = resolve_settings(options, s, warnings); !error.empty()) {
    std::cerr << "[x] " << error << "\n";
    return 1;
  }
  const std::vector<finding> all = run_checks(gather_facts(s, options));
  std::size_t problems = 0;
  for (const finding& x : all) problems += x.what == level::fail ? 1 : 0;
  if (as_json) {
    print_json(all, problems);
  } else {
    print_text(all, problems);
  }
  return problems == 0 ? 0 : 1;
}

}  // namespace cproxy::control
