// Implementation of connect/daemon/cli.hpp. Usage errors name the problem and exit 2.
#include "connect/daemon/cli.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "connect/config/proxy_options.hpp"
#include "connect/config/version.hpp"
#include "connect/daemon/doctor_command.hpp"
#include "connect/daemon/hosts_command.hpp"
#include "connect/daemon/requests_command.hpp"
#include "connect/pki/trust_store.hpp"

namespace cproxy::control {
namespace po = boost::program_options;
namespace {

constexpr const char* top_usage =
    "Usage: connect <command> [options]\n\n"
    "Commands:\n"
    "  proxy    Start, stop or inspect the local subdomain proxy\n\n"
    "Options:\n"
    "  --help       Show this help\n"
    "  --version    Print the version\n";

constexpr const char* proxy_usage =
    "Usage: connect proxy [start|stop|status|requests|trust|untrust|hosts|doctor] [options]\n\n"
    "Start the local subdomain proxy: http://NAME.localhost:PORT reaches the service named NAME.\n\n"
    "Actions:\n"
    "  start      Start the proxy server (default action)\n"
    "  stop       Stop the running proxy server\n"
    "  status     Show proxy status and active routes\n"
    "  requests   List the requests through the proxy (--route, --limit, --json, --follow, --har)\n"
    "  trust      Trust the local CA certificate for HTTPS (--check: verify each store)\n"
    "  untrust    Remove the local CA from the trust stores\n"
    "  hosts      Write the route names into /etc/hosts (or HOSTS_FILE); --remove takes them out\n"
    "  doctor     Check the proxy, routes, names, CA and port, each with its fix\n\n";

po::options_description proxy_description() {
  po::options_description d("Options");
  d.add_options()("help", "Show this help")("port", po::value<unsigned>(),
                                            "Port to listen on (default 3456)")(
      "bind", po::value<std::string>(), "Address to listen on (default 127.0.0.1)")(
      "config", po::value<std::string>(), "Path to a config file (instead of ~/.privateconnect/config.json)")(
      "domain", po::value<std::vector<std::string>>(),
      "A dev domain besides localhost (NAME.DOMAIN routes); repeatable")("quiet", po::bool_switch(),
                                                                         "No access lines in the log")(
      "replace", po::bool_switch(), "Take the port over from the proxy (or other program) listening on it")(
      "json", po::bool_switch(), "status, requests, doctor: print JSON")(
      "remove", po::bool_switch(), "hosts: remove the connect-proxy block")(
      "max-body", po::value<std::uint64_t>(),
      "Answer 413 to request bodies over this many bytes (default: no limit)")(
      "foreground", po::bool_switch(), "Run in the foreground (Ctrl+C stops)")(
      "io", po::value<std::string>(), "I/O backend: auto, uring or asio (env CONNECT_PROXY_IO)")(
      "threads", po::value<unsigned>(), "Worker threads (default: online CPUs)")(
      "hub", po::value<std::string>(), "Hub server URL (default https://hub.privateconnect.co)")(
      "https", po::bool_switch(), "Enable HTTPS with auto-generated certificates")(
      "cert", po::value<std::string>(), "Path to custom TLS certificate (PEM; with --key)")(
      "key", po::value<std::string>(), "Path to custom TLS private key (PEM; with --cert)")(
      "trust", po::bool_switch(), "Automatically trust the CA certificate")(
      "check", po::bool_switch(), "trust: verify that each trust store trusts the CA")(
      "route", po::value<std::string>(), "requests: only this route's")("limit", po::value<std::size_t>(),
                                                                        "requests: at most N, the newest")(
      "follow", po::bool_switch(), "requests: print new ones as they finish, until Ctrl+C")(
      "har", po::value<std::string>(), "requests: write them as HAR 1.2 to FILE");
  return d;
}

int usage_error(const std::string& message) {
  std::cerr << "connect: " << message << "\nTry: connect proxy --help\n";
  return 2;
}

constexpr const char* actions[] = {"start", "stop",    "status", "requests",
                                   "trust", "untrust", "hosts",  "doctor"};

requests_args requests_args_from(const po::variables_map& vm) {
  requests_args r;
  if (vm.count("route")) r.route = vm["route"].as<std::string>();
  if (vm.count("limit")) r.limit = vm["limit"].as<std::size_t>();
  if (vm.count("har")) r.har = vm["har"].as<std::string>();
  r.json = vm["json"].as<bool>();
  r.follow = vm["follow"].as<bool>();
  return r;
}

// The options of start, trust, hosts and doctor; a usage error's text instead when one is invalid.
struct parsed_options {
  proxy_options options;
  std::string error;
};

parsed_options proxy_options_from(const po::variables_map& vm) {
  parsed_options out;
  proxy_options& o = out.options;
  if (vm.count("port")) {
    const unsigned port = vm["port"].as<unsigned>();
    // Port 0 asks the kernel for a free port (the printed lines show the real one): tests use it.
    if (port > 65535) return {o, "--port must be between 0 and 65535"};
    o.port = static_cast<std::uint16_t>(port);
  }
  if (vm.count("bind")) o.bind = vm["bind"].as<std::string>();
  if (vm.count("hub")) o.hub = vm["hub"].as<std::string>();
  if (vm.count("config")) o.config_path = vm["config"].as<std::string>();
  if (vm.count("domain")) o.domains = vm["domain"].as<std::vector<std::string>>();
  o.quiet = vm["quiet"].as<bool>();
  o.replace = vm["replace"].as<bool>();
  if (vm.count("max-body")) o.max_body = vm["max-body"].as<std::uint64_t>();
  o.foreground = vm["foreground"].as<bool>();
  o.https = vm["https"].as<bool>();
  if (vm.count("cert")) o.cert = vm["cert"].as<std::string>();
  if (vm.count("key")) o.key = vm["key"].as<std::string>();
  if (o.cert.has_value() != o.key.has_value()) return {o, "--cert and --key go together: give both"};
  o.trust = vm["trust"].as<bool>();
  std::string io_text = "auto";
  if (const char* env = std::getenv("CONNECT_PROXY_IO"); env && *env) io_text = env;
  if (vm.count("io")) io_text = vm["io"].as<std::string>();
  const auto choice = io::parse_backend_choice(io_text);
  if (!choice) return {o, "--io must be auto, uring or asio, not '" + io_text + "'"};
  o.io = *choice;
  if (vm.count("threads")) {
    o.threads = vm["threads"].as<unsigned>();
    if (o.threads == 0 || o.threads > 1024) return {o, "--threads must be between 1 and 1024"};
  }
  return out;
}

// `connect proxy --trust` alone means the trust action: with nothing but the options that decide the
// CA (--config, --domain). Any option about running a proxy makes it a start that trusts.
bool asks_to_run_a_proxy(const po::variables_map& vm) {
  for (const char* o : {"https", "cert", "key", "foreground", "port", "bind", "replace", "hub", "io",
                        "threads", "max-body", "quiet"}) {
    const auto it = vm.find(o);
    if (it != vm.end() && !it->second.defaulted()) return true;
  }
  return false;
}

int run_proxy(std::vector<std::string> args) {
  std::string action = "start";
  const bool has_action = !args.empty() && !args.front().starts_with("-");
  if (has_action) {
    action = args.front();
    args.erase(args.begin());
  }
  const po::options_description description = proxy_description();
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(description).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << proxy_usage << description;
    return 0;
  }
  if (std::find(std::begin(actions), std::end(actions), action) == std::end(actions))
    return usage_error("unknown proxy action '" + action +
                       "' (this build has: start, stop, status, requests, trust, untrust, hosts, doctor)");
  if (action == "requests") return run_requests(requests_args_from(vm));
  if (vm["remove"].as<bool>() && action != "hosts") return usage_error("--remove goes with the hosts action");
  if (vm["check"].as<bool>() && action != "trust") return usage_error("--check goes with the trust action");
  if (action == "stop") return run_stop();
  if (action == "status") return run_status(vm["json"].as<bool>());

  const parsed_options parsed = proxy_options_from(vm);
  if (!parsed.error.empty()) return usage_error(parsed.error);
  const proxy_options& options = parsed.options;
  if (action == "hosts") return run_hosts(vm["remove"].as<bool>(), options);
  if (action == "doctor") return run_doctor(vm["json"].as<bool>(), options);
  if (action == "untrust") return run_trust(trust_action::untrust, options);
  if (action == "trust")
    return run_trust(vm["check"].as<bool>() ? trust_action::check : trust_action::trust, options);
  if (!has_action && options.trust && !asks_to_run_a_proxy(vm))
    return run_trust(trust_action::trust, options);
  return options.foreground ? run_foreground(options) : run_daemon(options);
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args.front() == "--help" || args.front() == "-h") {
    std::cout << top_usage;
    return args.empty() ? 2 : 0;
  }
  if (args.front() == "--version") {
    std::cout << "connect " << version << "\n";
    return 0;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  if (command == "proxy") return run_proxy(std::move(args));
  if (command == "reach" || command == "expose" || command == "dev")
    return usage_error("'" + command + "' is not part of this build (it has: proxy)");
  return usage_error("unknown command '" + command + "'");
}

}  // namespace cproxy::control
