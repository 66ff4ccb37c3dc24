// `connect proxy start --foreground`: bind, start the data path, print the start block, wait for
// SIGINT/SIGTERM, drain, exit 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "connect/config/config_file.hpp"
#include "connect/config/proxy_options.hpp"
#include "connect/config/settings.hpp"
#include "connect/config/version.hpp"
#include "connect/core/log.hpp"
#include "connect/core/process_limits.hpp"
#include "connect/daemon/control_socket.hpp"
#include "connect/daemon/port_owner.hpp"
#include "connect/daemon/state_file.hpp"
#include "connect/feed/route_feed.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/pki/tls_setup.hpp"
#include "connect/proxy/server.hpp"

namespace cproxy::control {
namespace {

constexpr io::duration drain_grace{10'000};

std::string port_taken_text(std::uint16_t port) {
  return "[x] Port " + std::to_string(port) + " is already in use\n" + "  Try: connect proxy start --port " +
         std::to_string(port + 1) + "\n" + "Or use --replace to take over:\n" +
         "connect proxy start --port " + std::to_string(port) + " --replace\n";
}

// A start that fails: the text goes to stderr and, for a daemon child, to its parent over the pipe.
// --replace of a program that is not our proxy: SIGTERM its listener, SIGKILL after 5 s; only a
// process of the same user. Returns the failure text, or "" once the process is gone.
std::string stop_foreign_listener(const io::endpoint& where) {
  const std::uint16_t port = where.port();
  const std::optional<port_owner> owner = find_listener(where);
  if (!owner) return {};  // it went away meanwhile: binding again will tell
  if (owner->uid != ::getuid())
    return "[x] --replace: port " + std::to_string(port) + " is held by pid " + std::to_string(owner->pid) +
           " of another user; not stopping it\n";
  log::info("--replace: stopping pid ", owner->pid, ", which listens on port ", port);
  ::kill(owner->pid, SIGTERM);
  for (int waits = 0; waits < 250 && ::kill(owner->pid, 0) == 0; ++waits)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (::kill(owner->pid, 0) == 0) {
    log::info("--replace: pid ", owner->pid, " ignored SIGTERM for 5 s; SIGKILL");
    ::kill(owner->pid, SIGKILL);
  }
  return {};
}

void wake_listener(const std::string& bind, std::uint16_t port) {
  const std::string host = bind == "0.0.0.0" ? "127.0.0.1" : bind == "::" ? "::1" : bind;
  const auto where = io::endpoint::from(host, port);
  if (!where) return;
  const int fd = ::socket(where->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (::connect(fd, where->data(), where->size()) != 0)
    log::warn("--replace: could not wake the successor's acceptor");
  ::close(fd);
}

int fail(int ready_fd, const std::string& text) {
  if (ready_fd < 0) {
    std::cerr << text << std::flush;
  } else {
    // A daemon's stderr is its log, whose lines start with a timestamp.
    log::error(text.substr(0, text.find_last_not_of('\n') + 1));
    const std::string line = "err " + text;
    const ssize_t ignored = ::write(ready_fd, line.data(), line.size());
    (void)ignored;
  }
  return 1;
}

// The foreground start block of the contract ("Printed output"); `tls` null for plain HTTP.
void print_started(const settings& config, std::uint16_t port, const route::table& table,
                   const tls_setup* tls, const std::vector<std::string>& trust) {
  const std::string scheme = tls ? "https" : "http";
  std::cout << "🌐 Starting subdomain proxy...\n\n"
            << "  Hub:  " << config.hub << "\n"
            << "  Port: " << port << "\n"
            << "  TLS:  " << (tls ? tls->tls_line : "disabled") << "\n\n";
  if (tls) {
    for (const std::string& line : tls->cert_lines) std::cout << line << "\n";
    for (const std::string& line : trust) std::cout << line << "\n";
    std::cout << "\n";
  }
  if (table.routes().empty()) {
    std::cout << "[!] No routes yet\n"
              << "  Add one with: connect reach <service>, or \"routes\" in " << config.home
              << "/config.json\n\n";
  } else {
    std::cout << "[ok] Found " << table.routes().size() << " route(s):\n";
    for (const route::route& r : table.routes())
      std::cout << "  • " << r.name << " → " << r.upstream_text() << " [" << route::to_string(r.from)
                << "]\n";
    std::cout << "\n";
  }
  std::cout << "[ok] " << (tls ? "HTTPS" : "HTTP") << " proxy running on port " << port << "\n\n";
  if (!table.routes().empty()) {
    std::cout << "  Access your services via subdomains:\n\n";
    for (const route::route& r : table.routes())
      std::cout << "    " << scheme << "://" << r.name << ".localhost:" << port << "\n";
    std::cout << "\n";
  }
  std::cout << "  Press Ctrl+C to stop\n" << std::flush;
}

}  // namespace

int run_foreground(const proxy_options& options, int ready_fd) {
  // Block the stop signals before any thread starts, so every worker inherits the mask and only
  // sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ignore_sigpipe();
  raise_open_file_limit();

  std::string error;
  const auto decision = io::decide_backend(options.io, error);
  if (!decision) {
    return fail(ready_fd, "[x] " + error + "\n");
  }
  if (!decision->fallback_reason.empty())
    log::warn("io: ", decision->fallback_reason, "; using the asio backend");

  settings config;
  std::vector<std::string> warnings;
  if (const std::string problem = resolve_settings(options, config, warnings); !problem.empty()) {
    return fail(ready_fd, "[x] " + problem + "\n");
  }
  for (const std::string& w : warnings) log::warn(w);
  // A home others can write to (or another user's) is refused before anything is written in it.
  if (std::string home_error; !ensure_home_folder(home_error))
    return fail(ready_fd, "[x] " + home_error + "\n");

  const auto where = io::endpoint::from(config.bind, config.port);
  if (!where) {
    return fail(ready_fd, "[x] --bind must be a numeric IPv4 or IPv6 address, not '" + config.bind + "'\n");
  }
  std::optional<handover> takeover;
  io::listen_socket listener;
  std::error_code ec;
  if (options.replace) {
    if (const auto running = running_proxy(config.home); running && running->port == config.port) {
      // Our own proxy: it hands its listening socket over and keeps accepting until we do.
      std::string why;
      takeover = handover::request(control_socket_path(config.home), why);
      if (!takeover) return fail(ready_fd, "[x] --replace: " + why + "\n");
      listener = io::listen_socket(takeover->listen_fd());
      log::info("--replace: took the listening socket over from pid ", running->pid);
    }
  }
  if (!listener.is_open()) {
    listener = io::listen_socket::bind(*where, 4096, ec);
    if (ec == std::errc::address_in_use && options.replace) {
      if (const std::string why = stop_foreign_listener(*where); !why.empty()) return fail(ready_fd, why);
      for (int attempt = 0; attempt < 100 && ec == std::errc::address_in_use; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the port frees as the process exits
        listener = io::listen_socket::bind(*where, 4096, ec);
      }
    }
  }
  if (ec == std::errc::address_in_use) {
    return fail(ready_fd, port_taken_text(config.port));
  }
  if (ec) {
    return fail(ready_fd, "[x] Cannot listen on " + where->to_string() + ": " + ec.message() + "\n");
  }
  // One proxy per home (checked once the port is ours, so that a taken port still reads as such): a
  // second one would write its state file over the first's, and `status` and `stop` would mix the two.
  // Whoever answers on proxy.sock (our user's) is a running proxy.
  const auto other_proxy_here = [&config]() -> std::optional<std::string> {
    control_peer peer;
    const std::optional<std::string> answer =
        control_request(control_socket_path(config.home), R"({"cmd":"status"})", &peer);
    if (!answer || peer.uid != ::getuid() || peer.pid == ::getpid()) return std::nullopt;
    return "[x] A proxy is already running in " + config.home + " (pid " + std::to_string(peer.pid) +
           ")\n  Stop it: connect proxy stop\nOr use --replace to take over\n";
  };
  if (!options.replace) {
    if (const std::optional<std::string> refused = other_proxy_here()) return fail(ready_fd, *refused);
  }

  // HTTPS: the CA, the start-up certificate (for the config routes' names) or the --cert/--key pair.
  std::optional<tls_setup> tls;
  if (config.https) {
    std::vector<std::string> names;
    const route::table start_routes(config.config_routes, config.domains);
    for (const route::route& r : start_routes.routes()) names.push_back(r.name);
    tls.emplace();
    if (const std::string problem = prepare_tls(config, options, names, *tls); !problem.empty())
      return fail(ready_fd, "[x] " + problem + "\n");
  }

  proxy::server_options server_options;
  if (tls) server_options.tls = tls->context;
  server_options.io = decision->kind;
  server_options.threads =
      options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  server_options.version = version;
  server_options.started_at = log::iso8601_now();
  server_options.timeouts = config.timeouts;
  server_options.max_body = options.max_body;
  server_options.access_log = !config.quiet;
  server_options.inspect = config.inspect;
  // Config routes to begin with; route_feed adds active-routes.json and the handed-over hub routes before
  // the server exists. A successor's workers accept from the shared socket as soon as the server does,
  // not only after confirm(): a table without them would answer 404 where the predecessor routed.
  published<route::table> routes(std::make_shared<const route::table>(config.config_routes, config.domains));
  // Routes that change while running (active-routes.json, dead pids, the hub): off the workers' threads.
  route_feed feed(feed_config(config, options), routes);
  if (takeover && !takeover->hub().routes.empty()) {
    const hub_handover& handed = takeover->hub();
    if (feed.polls_hub() && handed.hub_url == feed.hub_url()) {
      log::info("--replace: took ", handed.routes.size(),
                " hub route(s) over; they stay until the hub answers");
      feed.seed_hub_routes(handed.routes);
    } else {
      // Another hub, or none: routes of a hub this proxy never asks would never be updated nor removed.
      log::info("--replace: not keeping the predecessor's ", handed.routes.size(), " hub route(s) from ",
                handed.hub_url, ": this proxy ",
                feed.polls_hub() ? "polls " + feed.hub_url() : "polls no hub");
    }
  }
  try {
    feed.start();
  } catch (const std::exception& e) {
    return fail(ready_fd, std::string("[x] The proxy could not start: ") + e.what() + "\n");
  }
  std::optional<proxy::server> server;
  try {
    server.emplace(std::move(listener), server_options, routes);
  } catch (const std::exception& e) {
    return fail(ready_fd, std::string("[x] The proxy could not start: ") + e.what() + "\n");
  }
  const std::uint16_t port = server->port();
  log::info("listening on ", io::endpoint::from(config.bind, port)->to_string(), " with ",
            server_options.threads, " worker(s), io ", io::to_string(decision->kind));
  // The table is complete (see above) and we accept now: the predecessor stops accepting and drains.
  if (takeover) takeover->confirm();
  // proxy.sock: status, stop, and the handover to a successor. A predecessor frees the path as it drains.
  std::optional<control_server> control;
  std::atomic<bool> handed_over{false};
  for (int attempt = 0; attempt < 100 && !control; ++attempt) {
    std::string why;
    const io::native_handle_type listen_fd = server->listen_handle();
    control.emplace(
        control_socket_path(config.home),
        control_server::handlers{
            [&server] { return server->status_json(); }, [] { ::kill(::getpid(), SIGTERM); }, listen_fd,
            [&feed] {
              return hub_handover{feed.polls_hub() ? feed.hub_url() : "", feed.hub_routes()};
            },
            [&handed_over] { handed_over = true; }},
        why);
    if (!why.empty()) {
      control.reset();
      if (!takeover || attempt == 99) {
        log::warn("proxy.sock: ", why);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Two starts at once both pass the check above; the one that did not get proxy.sock gives way.
  if (!control && !options.replace) {
    if (const std::optional<std::string> refused = other_proxy_here()) return fail(ready_fd, *refused);
  }
  // The state file names the process behind proxy.sock, or none: `status` and `stop` trust only that.
  std::string state_error = "not written: this process does not hold proxy.sock";
  if (!control || !ensure_home_folder(state_error) ||
      !write_state(config.home,
                   proxy_state{::getpid(), port, tls.has_value(), server_options.started_at, config.bind,
                               std::string(io::to_string(decision->kind)), version},
                   state_error)) {
    log::warn("state file: ", state_error);
  }
  if (ready_fd >= 0) {
    // The daemon's parent prints the start block; this process's stdout is the log.
    // One write (atomic under PIPE_BUF): the parent stops reading at the first complete "ok" line.
    std::string line = "ok " + std::to_string(port) + (tls ? " https" : "") + "\n";
    if (tls && !tls->new_ca_warning.empty()) line += "warn " + tls->new_ca_warning + "\n";
    const ssize_t ignored = ::write(ready_fd, line.data(), line.size());
    (void)ignored;
    ::close(ready_fd);
  } else {
    // The trust lines come last: --trust runs the stores' tools, which may take seconds.
    const std::vector<std::string> trust =
        tls ? trust_lines(config, options, *tls) : std::vector<std::string>{};
    print_started(config, port, *routes.load(), tls ? &*tls : nullptr, trust);
  }

  int received = 0;
  while (sigwait(&stop_signals, &received) == 0 && received == SIGHUP) {  // until SIGINT or SIGTERM
    if (log::reopen()) log::info("reopened the log on SIGHUP");           // logrotate moved proxy.log
  }
  log::info("received ", received == SIGINT ? "SIGINT" : "SIGTERM", "; draining");
  feed.stop();
  control.reset();
  if (handed_over) {
    // The successor accepts from the same socket. A wake-up our cancelled accept swallowed (accept
    // waits are exclusive) would leave a connection in the backlog until the next one arrives: once
    // we accept no more, one throwaway connection wakes the successor, which takes the backlog.
    server->stop_accepting();
    wake_listener(config.bind, port);
  }
  server->stop(drain_grace);
  server.reset();
  // After a handover the state file is the successor's, even while it still names us: reading it and
  // removing it is not atomic, and a successor that wrote its own in between would lose it (the next
  // --replace would then see no proxy of ours and SIGTERM the successor as a foreign listener).
  if (!handed_over) remove_state_if_own(config.home, ::getpid());
  log::info("stopped");
  return 0;
}

}  // namespace cproxy::control
