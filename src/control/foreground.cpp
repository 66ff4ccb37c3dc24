// `connect proxy start --foreground`: bind, start the data path, print the start block, wait for
// SIGINT/SIGTERM, drain, exit 0.
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "connect/control/proxy_options.hpp"
#include "connect/core/log.hpp"
#include "connect/core/process_limits.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/proxy/server.hpp"
#include "version.hpp"

namespace cproxy::control {
namespace {

constexpr io::duration drain_grace{10'000};

void print_port_taken(std::uint16_t port) {
  std::cerr << "[x] Port " << port << " is already in use\n"
            << "  Try: connect proxy start --port " << port + 1 << "\n"
            << "Or use --replace to take over:\n"
            << "connect proxy start --port " << port << " --replace\n";
}

}  // namespace

int run_foreground(const proxy_options& options) {
  // Block the stop signals before any thread starts, so every worker inherits the mask and only
  // sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ignore_sigpipe();
  raise_open_file_limit();

  std::string error;
  const auto decision = io::decide_backend(options.io, error);
  if (!decision) {
    std::cerr << "[x] " << error << "\n";
    return 1;
  }
  if (!decision->fallback_reason.empty())
    log::warn("io: ", decision->fallback_reason, "; using the asio backend");

  const auto where = io::endpoint::from(options.bind, options.port);
  if (!where) {
    std::cerr << "[x] --bind must be a numeric IPv4 or IPv6 address, not '" << options.bind << "'\n";
    return 1;
  }
  std::error_code ec;
  io::listen_socket listener = io::listen_socket::bind(*where, 4096, ec);
  if (ec == std::errc::address_in_use) {
    print_port_taken(options.port);
    return 1;
  }
  if (ec) {
    std::cerr << "[x] Cannot listen on " << where->to_string() << ": " << ec.message() << "\n";
    return 1;
  }

  proxy::server_options server_options;
  server_options.io = decision->kind;
  server_options.threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  server_options.version = version;
  server_options.started_at = log::iso8601_now();
  std::optional<proxy::server> server;
  try {
    server.emplace(std::move(listener), server_options);
  } catch (const std::exception& e) {
    std::cerr << "[x] The proxy could not start: " << e.what() << "\n";
    return 1;
  }
  const std::uint16_t port = server->port();
  log::info("listening on ", io::endpoint::from(options.bind, port)->to_string(), " with ", server_options.threads,
            " worker(s), io ", io::to_string(decision->kind));

  std::cout << "🌐 Starting subdomain proxy...\n\n"
            << "  Hub:  " << options.hub << "\n"
            << "  Port: " << port << "\n"
            << "  TLS:  disabled\n\n"
            << "[!] No routes yet\n\n"
            << "[ok] HTTP proxy running on port " << port << "\n\n"
            << "  Press Ctrl+C to stop\n"
            << std::flush;

  int received = 0;
  sigwait(&stop_signals, &received);
  log::info("received ", received == SIGINT ? "SIGINT" : "SIGTERM", "; draining");
  server->stop(drain_grace);
  server.reset();
  log::info("stopped");
  return 0;
}

}  // namespace cproxy::control
