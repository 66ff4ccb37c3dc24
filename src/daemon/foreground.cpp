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
#include "connect/platform/process.hpp"
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
  // A handle names the process found, never a later one that reuses its pid; pids where there is none.
  const platform::process_handle target = platform::process_handle::open(owner->pid);
  const auto send = [&](int sig) {
    target.valid() ? (void)target.signal(sig) : (void)::kill(owner->pid, sig);
  };
  const auto gone = [&] { return target.valid() ? target.exited() : !platform::pid_alive(owner->pid); };
  send(SIGTERM);
  for (int waits = 0; waits < 250 && !gone(); ++waits)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!gone()) {
    log::info("--replace: pid ", owner->pid, " ignored SIGTERM for 5 s; SIGKILL");
    send(SIGKILL);
  }
  return {};
}

void wake_listener(const std::string& bind, std::uint16_t port) {
  const io::endpoint where = local_endpoint(bind, port);
  const int fd = ::socket(where.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (::connect(fd, where.data(), where.size()) != 0)
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

// What a foreground start builds, step by step. Members are declared in the order the steps make
// them, so a failed start tears down in reverse: the server before the feed it reads, proxy.sock first.
struct foreground_run {
  explicit foreground_run(const proxy_options& given) : options(given) {}

  const proxy_options& options;
  sigset_t stop_signals{};
  io::backend_decision backend;
  settings config;
  std::optional<handover> takeover;  // --replace of our own proxy: its socket and hub routes
  bool stopped_predecessor = false;  // --replace of our own proxy on another port: it drains
  io::listen_socket listener;
  std::optional<tls_setup> tls;
  proxy::server_options server_options;
  std::optional<published<route::table>> routes;
  std::optional<route_feed> feed;
  std::optional<proxy::server> server;
  std::atomic<bool> handed_over{false};  // a successor took the listening socket over proxy.sock
  std::optional<control_server> control;
};

// Each step returns "" or the whole failure text the user sees (fail() prints it or pipes it).

// Blocks the stop signals before any thread starts, so every worker inherits the mask and only
// wait_and_drain's sigwait() sees them.
void block_stop_signals(foreground_run& run) {
  sigemptyset(&run.stop_signals);
  sigaddset(&run.stop_signals, SIGINT);
  sigaddset(&run.stop_signals, SIGTERM);
  sigaddset(&run.stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &run.stop_signals, nullptr);
  ignore_sigpipe();
  raise_open_file_limit();
}

std::string choose_backend(foreground_run& run) {
  std::string error;
  const auto decision = io::decide_backend(run.options.io, error);
  if (!decision) return "[x] " + error + "\n";
  if (!decision->fallback_reason.empty())
    log::warn("io: ", decision->fallback_reason, "; using the asio backend");
  run.backend = *decision;
  return {};
}

std::string read_settings(foreground_run& run) {
  std::vector<std::string> warnings;
  if (const std::string problem = resolve_settings(run.options, run.config, warnings); !problem.empty())
    return "[x] " + problem + "\n";
  for (const std::string& w : warnings) log::warn(w);
  // A home others can write to (or another user's) is refused before anything is written in it.
  if (std::string home_error; !ensure_home_folder(home_error)) return "[x] " + home_error + "\n";
  return {};
}

// Whoever answers on proxy.sock (our user's) is a running proxy: a second one in the same home would
// write its state file over the first's, and `status` and `stop` would mix the two.
std::optional<std::string> other_proxy_in_home(const settings& config) {
  control_peer peer;
  const std::optional<std::string> answer =
      control_request(control_socket_path(config.home), R"({"cmd":"status"})", &peer);
  if (!answer || peer.uid != ::getuid() || peer.pid == ::getpid()) return std::nullopt;
  return "[x] A proxy is already running in " + config.home + " (pid " + std::to_string(peer.pid) +
         ")\n  Stop it: connect proxy stop\nOr use --replace to take over\n";
}

// --replace while this home's proxy listens on another port: there is no socket to hand over, but the
// home keeps one proxy, so the predecessor is asked to stop (it drains) once our port is bound.
void stop_predecessor_on_other_port(foreground_run& run) {
  control_peer peer;
  const std::optional<std::string> answer =
      control_request(control_socket_path(run.config.home), R"({"cmd":"stop"})", &peer);
  if (!answer || peer.uid != ::getuid() || peer.pid == ::getpid()) return;
  log::info("--replace: stopping this home's proxy (pid ", peer.pid, "), which listens on another port");
  run.stopped_predecessor = true;
}

// The listening socket: handed over by our own proxy (--replace), or bound, evicting a foreign
// listener first with --replace.
std::string acquire_listener(foreground_run& run) {
  const settings& config = run.config;
  const auto where = io::endpoint::from(config.bind, config.port);
  if (!where) return "[x] --bind must be a numeric IPv4 or IPv6 address, not '" + config.bind + "'\n";
  if (run.options.replace) {
    if (const auto running = running_proxy(config.home); running && running->port == config.port) {
      // Our own proxy: it hands its listening socket over and keeps accepting until we do.
      std::string why;
      run.takeover = handover::request(control_socket_path(config.home), why);
      if (!run.takeover) return "[x] --replace: " + why + "\n";
      run.listener = io::listen_socket(run.takeover->listen_fd());
      log::info("--replace: took the listening socket over from pid ", running->pid);
    }
  }
  std::error_code ec;
  if (!run.listener.is_open()) {
    run.listener = io::listen_socket::bind(*where, 4096, ec);
    if (ec == std::errc::address_in_use && run.options.replace) {
      if (const std::string why = stop_foreign_listener(*where); !why.empty()) return why;
      for (int attempt = 0; attempt < 100 && ec == std::errc::address_in_use; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the port frees as the process exits
        run.listener = io::listen_socket::bind(*where, 4096, ec);
      }
    }
  }
  if (ec == std::errc::address_in_use) return port_taken_text(config.port);
  if (ec) return "[x] Cannot listen on " + where->to_string() + ": " + ec.message() + "\n";
  // Checked once the port is ours, so that a taken port still reads as such.
  if (!run.options.replace) {
    if (const std::optional<std::string> refused = other_proxy_in_home(config)) return *refused;
  } else if (!run.takeover) {
    stop_predecessor_on_other_port(run);
  }
  return {};
}

// HTTPS: the CA, the start-up certificate (for the config routes' names) or the --cert/--key pair.
std::string prepare_tls(foreground_run& run) {
  if (!run.config.https) return {};
  std::vector<std::string> names;
  const route::table start_routes(run.config.config_routes, run.config.domains);
  for (const route::route& r : start_routes.routes()) names.push_back(r.name);
  run.tls.emplace();
  if (const std::string problem = control::prepare_tls(run.config, run.options, names, *run.tls);
      !problem.empty())
    return "[x] " + problem + "\n";
  return {};
}

// Hub routes a --replace predecessor handed over are kept only if this proxy polls the same hub:
// routes of a hub it never asks would never be updated nor removed.
void seed_handed_over_hub_routes(foreground_run& run) {
  if (!run.takeover || run.takeover->hub().routes.empty()) return;
  const hub_handover& handed = run.takeover->hub();
  route_feed& feed = *run.feed;
  if (feed.polls_hub() && handed.hub_url == feed.hub_url()) {
    log::info("--replace: took ", handed.routes.size(),
              " hub route(s) over; they stay until the hub answers");
    feed.seed_hub_routes(handed.routes);
  } else {
    log::info("--replace: not keeping the predecessor's ", handed.routes.size(), " hub route(s) from ",
              handed.hub_url, ": this proxy ", feed.polls_hub() ? "polls " + feed.hub_url() : "polls no hub");
  }
}

// The route feed, then the data path on the listening socket.
std::string start_server(foreground_run& run) {
  const settings& config = run.config;
  proxy::server_options& server_options = run.server_options;
  if (run.tls) server_options.tls = run.tls->context;
  server_options.io = run.backend.kind;
  server_options.threads =
      run.options.threads ? run.options.threads : std::max(1u, std::thread::hardware_concurrency());
  server_options.version = version;
  server_options.started_at = log::iso8601_now();
  server_options.timeouts = config.timeouts;
  server_options.max_body = run.options.max_body;
  server_options.access_log = !config.quiet;
  server_options.inspect = config.inspect;
  // Config routes to begin with; the feed adds active-routes.json and the handed-over hub routes before
  // the server exists. A successor's workers accept from the shared socket as soon as the server does,
  // not only after confirm(): a table without them would answer 404 where the predecessor routed.
  run.routes.emplace(std::make_shared<const route::table>(config.config_routes, config.domains));
  // Routes that change while running (active-routes.json, dead pids, the hub): off the workers' threads.
  // The hub client runs on the workers' backend: one network stack, whichever the machine allows.
  route_feed_config feed_settings = feed_config(config, run.options);
  feed_settings.hub_io = run.backend.kind;
  run.feed.emplace(std::move(feed_settings), *run.routes);
  seed_handed_over_hub_routes(run);
  try {
    run.feed->start();
    run.server.emplace(std::move(run.listener), server_options, *run.routes);
  } catch (const std::exception& e) {
    return std::string("[x] The proxy could not start: ") + e.what() + "\n";
  }
  log::info("listening on ", io::endpoint::from(config.bind, run.server->port())->to_string(), " with ",
            server_options.threads, " worker(s), io ", io::to_string(run.backend.kind));
  // The table is complete (see above) and we accept now: the predecessor stops accepting and drains.
  if (run.takeover) run.takeover->confirm();
  return {};
}

// proxy.sock (status, stop, the handover to a successor), then the state file, which names the
// process behind proxy.sock or none: `status` and `stop` trust only that.
std::string serve_control_socket(foreground_run& run) {
  const settings& config = run.config;
  // A predecessor frees the path as it starts draining: a successor retries for up to 2 s.
  for (int attempt = 0; attempt < 100 && !run.control; ++attempt) {
    std::string why;
    run.control.emplace(
        control_socket_path(config.home),
        control_server::handlers{
            [&run] { return run.server->status_json(); }, [] { ::kill(::getpid(), SIGTERM); },
            run.server->listen_handle(),
            [&run] {
              return hub_handover{run.feed->polls_hub() ? run.feed->hub_url() : "", run.feed->hub_routes()};
            },
            [&run] { run.handed_over = true; }},
        why);
    if (why.empty()) break;
    run.control.reset();
    if ((!run.takeover && !run.stopped_predecessor) || attempt == 99) {
      log::warn("proxy.sock: ", why);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Two starts at once both pass acquire_listener's check; the one that did not get proxy.sock gives way.
  if (!run.control && !run.options.replace) {
    if (const std::optional<std::string> refused = other_proxy_in_home(config)) return *refused;
  }
  std::string state_error = "not written: this process does not hold proxy.sock";
  if (!run.control || !ensure_home_folder(state_error) ||
      !write_state(
          config.home,
          proxy_state{::getpid(), run.server->port(), run.tls.has_value(), run.server_options.started_at,
                      config.bind, std::string(io::to_string(run.backend.kind)), version},
          state_error)) {
    log::warn("state file: ", state_error);
  }
  return {};
}

// A daemon tells its parent, which prints the start block; a foreground proxy prints it.
void announce(foreground_run& run, int ready_fd) {
  const std::uint16_t port = run.server->port();
  if (ready_fd >= 0) {
    // This process's stdout is the log. One write (atomic under PIPE_BUF): the parent stops reading
    // at the first complete "ok" line.
    std::string line = "ok " + std::to_string(port) + (run.tls ? " https" : "") + "\n";
    if (run.tls && !run.tls->new_ca_warning.empty()) line += "warn " + run.tls->new_ca_warning + "\n";
    const ssize_t ignored = ::write(ready_fd, line.data(), line.size());
    (void)ignored;
    ::close(ready_fd);
    return;
  }
  // The trust lines come last: --trust runs the stores' tools, which may take seconds.
  const std::vector<std::string> trust =
      run.tls ? trust_lines(run.config, run.options, *run.tls) : std::vector<std::string>{};
  print_started(run.config, port, *run.routes->load(), run.tls ? &*run.tls : nullptr, trust);
}

// Serves until SIGINT or SIGTERM (SIGHUP reopens the log), then drains in-flight requests.
int wait_and_drain(foreground_run& run) {
  int received = 0;
  while (sigwait(&run.stop_signals, &received) == 0 && received == SIGHUP) {
    if (log::reopen()) log::info("reopened the log on SIGHUP");  // logrotate moved proxy.log
  }
  log::info("received ", received == SIGINT ? "SIGINT" : "SIGTERM", "; draining");
  run.feed->stop();
  run.control.reset();
  const std::uint16_t port = run.server->port();
  if (run.handed_over) {
    // The successor accepts from the same socket. A wake-up our cancelled accept swallowed (accept
    // waits are exclusive) would leave a connection in the backlog until the next one arrives: once
    // we accept no more, one throwaway connection wakes the successor, which takes the backlog.
    run.server->stop_accepting();
    wake_listener(run.config.bind, port);
  }
  run.server->stop(drain_grace);
  run.server.reset();
  // After a handover the state file is the successor's, even while it still names us: reading it and
  // removing it is not atomic, and a successor that wrote its own in between would lose it (the next
  // --replace would then see no proxy of ours and SIGTERM the successor as a foreign listener).
  if (!run.handed_over) remove_state_if_own(run.config.home, ::getpid());
  log::info("stopped");
  return 0;
}

}  // namespace

int run_foreground(const proxy_options& options, int ready_fd) {
  foreground_run run(options);
  block_stop_signals(run);
  for (std::string (*step)(foreground_run&) :
       {choose_backend, read_settings, acquire_listener, prepare_tls, start_server, serve_control_socket}) {
    if (const std::string failure = step(run); !failure.empty()) return fail(ready_fd, failure);
  }
  announce(run, ready_fd);
  return wait_and_drain(run);
}

}  // namespace cproxy::control
