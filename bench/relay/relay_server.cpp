// connect-relay-bench: a TCP relay on the io core, used the way the proxy's tunnel stage uses it: one
// coroutine per direction, half-close on EOF, copy (recv_any + send_all) or splice_to. Not the proxy:
// no routing, no TLS, one fixed upstream. Prints "listening PORT" when ready; SIGTERM/SIGINT stop it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "connect/core/process_limits.hpp"
#include "connect/coro/scope.hpp"
#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/endpoint.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/io/result.hpp"
#include "connect/io/select_backend.hpp"
#include "connect/io/socket.hpp"
#include "connect/io/worker_pool.hpp"

namespace cproxy::bench {
namespace {

enum class relay_mode { copy, splice };

struct relay_options {
  io::endpoint upstream;
  relay_mode mode = relay_mode::copy;
  std::size_t splice_max = std::size_t{1} << 20;
};

// Process totals, touched once per connection (never per read), printed on exit.
struct totals {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<bool> nodelay_checked{false};
};
totals g_totals;

// One relayed connection. Lives in serve()'s frame until both directions have finished.
struct relay_state {
  io::socket client;
  io::socket upstream;
  bool failed = false;
};

// A proxy wants small writes out at once. The bench sets TCP_NODELAY itself and reports, once, whether
// the core had already done so (accepted and connected sockets).
void set_nodelay(io::socket& s, const char* which) {
  const int fd = s.native_handle();
  if (!g_totals.nodelay_checked.exchange(true)) {
    int on = 0;
    socklen_t len = sizeof on;
    ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len);
    std::fprintf(stderr, "relay: TCP_NODELAY on the %s socket as the core left it: %s\n", which,
                 on ? "on" : "off");
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The first error ends the connection: cancel both sockets so the other direction stops waiting.
void fail(relay_state* st, const std::error_code& ec) {
  if (!st->failed && !io::is_cancelled(ec)) {
    g_totals.failures.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "relay: %s\n", ec.message().c_str());
  }
  st->failed = true;
  st->client.cancel();
  st->upstream.cancel();
}

coro::task<void> pump_copy(relay_state* st, io::socket* from, io::socket* to) {
  std::uint64_t moved = 0;
  while (!st->failed) {
    io::received in = co_await from->recv_any();
    if (in.ec) {
      fail(st, in.ec);
      break;
    }
    if (in.data.empty()) {
      to->shutdown_send();
      break;
    }
    const std::span<const std::byte> bytes = in.data.bytes();
    io::io_result out = co_await to->send_all(bytes);
    if (!out) {
      fail(st, out.ec);
      break;
    }
    moved += out.bytes;
  }
  g_totals.bytes.fetch_add(moved, std::memory_order_relaxed);
}

coro::task<void> pump_splice(relay_state* st, io::socket* from, io::socket* to, std::size_t max) {
  std::uint64_t moved = 0;
  while (!st->failed) {
    io::io_result r = co_await from->splice_to(*to, max);
    if (!r) {
      fail(st, r.ec);
      break;
    }
    if (r.bytes == 0) {
      to->shutdown_send();
      break;
    }
    moved += r.bytes;
  }
  g_totals.bytes.fetch_add(moved, std::memory_order_relaxed);
}

coro::task<void> pump(relay_state* st, io::socket* from, io::socket* to, relay_options opts) {
  if (opts.mode == relay_mode::splice) {
    co_await pump_splice(st, from, to, opts.splice_max);
  } else {
    co_await pump_copy(st, from, to);
  }
}

coro::task<void> serve(io::socket client, io::worker* w, relay_options opts) {
  g_totals.connections.fetch_add(1, std::memory_order_relaxed);
  relay_state st;
  st.client = std::move(client);
  std::error_code ec;
  st.upstream = io::socket::open(w->ctx(), opts.upstream.family(), ec);
  if (ec) {
    fail(&st, ec);
    co_return;
  }
  const std::error_code connected = co_await st.upstream.connect(opts.upstream);
  if (connected) {
    fail(&st, connected);
    co_return;
  }
  set_nodelay(st.client, "accepted");
  set_nodelay(st.upstream, "upstream");

  coro::scope directions;
  directions.spawn(pump(&st, &st.client, &st.upstream, opts));
  directions.spawn(pump(&st, &st.upstream, &st.client, opts));
  co_await directions.join();
}

struct cli {
  io::backend_kind kind = io::backend_kind::uring;
  unsigned threads = 1;
  relay_options relay;
  std::uint16_t listen_port = 0;
  bool have_upstream = false;
};

[[noreturn]] void usage(const char* problem) {
  if (problem) std::fprintf(stderr, "connect-relay-bench: %s\n", problem);
  std::fprintf(stderr,
               "usage: connect-relay-bench --upstream PORT [--listen PORT] [--io uring|asio] [--threads N]\n"
               "                           [--mode copy|splice] [--splice-max BYTES]\n");
  std::exit(2);
}

unsigned long number(const char* text, unsigned long max) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v > max) usage("bad number");
  return v;
}

cli parse(int argc, char** argv) {
  cli c;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) usage("missing value");
    const char* value = argv[++i];
    const std::string_view v = value;
    if (arg == "--io") {
      if (v == "uring") {
        c.kind = io::backend_kind::uring;
      } else if (v == "asio") {
        c.kind = io::backend_kind::asio;
      } else {
        usage("--io is uring or asio");
      }
    } else if (arg == "--mode") {
      if (v == "copy") {
        c.relay.mode = relay_mode::copy;
      } else if (v == "splice") {
        c.relay.mode = relay_mode::splice;
      } else {
        usage("--mode is copy or splice");
      }
    } else if (arg == "--threads") {
      c.threads = static_cast<unsigned>(number(value, 256));
      if (c.threads == 0) usage("--threads must be at least 1");
    } else if (arg == "--listen") {
      c.listen_port = static_cast<std::uint16_t>(number(value, 65535));
    } else if (arg == "--upstream") {
      c.relay.upstream = io::endpoint::loopback_v4(static_cast<std::uint16_t>(number(value, 65535)));
      c.have_upstream = true;
    } else if (arg == "--splice-max") {
      c.relay.splice_max = number(value, std::size_t{1} << 30);
      if (c.relay.splice_max == 0) usage("--splice-max must be at least 1");
    } else {
      usage("unknown option");
    }
  }
  if (!c.have_upstream) usage("--upstream is required");
  return c;
}

int run(const cli& c) {
  ignore_sigpipe();
  // Blocked here, so every worker thread inherits the mask and only sigwait() below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::error_code ec;
  io::listen_socket listener = io::listen_socket::bind(io::endpoint::loopback_v4(c.listen_port), 1024, ec);
  if (ec) {
    std::fprintf(stderr, "connect-relay-bench: listen on port %u: %s\n", c.listen_port, ec.message().c_str());
    return 1;
  }

  std::mutex caps_mutex;
  std::optional<io::capabilities> caps;
  const relay_options opts = c.relay;
  io::worker_pool pool(
      listener, {c.kind, c.threads},
      [opts](io::socket s, io::worker& w) { return serve(std::move(s), &w, opts); },
      [&caps_mutex, &caps](io::worker& w) {
        std::lock_guard lock(caps_mutex);
        if (!caps) caps = w.ctx().caps();
      });

  {
    std::lock_guard lock(caps_mutex);
    const io::capabilities k = caps.value_or(io::capabilities{});
    std::fprintf(stderr,
                 "relay: io %s, %u thread(s), mode %s; caps splice=%d provided_buffers=%d "
                 "multishot_accept=%d defer_taskrun=%d\n",
                 std::string(io::to_string(c.kind)).c_str(), c.threads,
                 c.relay.mode == relay_mode::splice ? "splice" : "copy", k.splice, k.provided_buffers,
                 k.multishot_accept, k.defer_taskrun);
    if (c.relay.mode == relay_mode::splice && !k.splice) {
      std::fprintf(stderr, "relay: this backend has no zero-copy splice; splice_to copies through a lease\n");
    }
  }
  std::printf("listening %u\n", static_cast<unsigned>(listener.local_endpoint().port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  pool.stop(io::duration{1000});
  std::fprintf(stderr, "relay: stopped by signal %d: %llu connections, %llu bytes relayed, %llu failures\n",
               sig, static_cast<unsigned long long>(g_totals.connections.load()),
               static_cast<unsigned long long>(g_totals.bytes.load()),
               static_cast<unsigned long long>(g_totals.failures.load()));
  return 0;
}

}  // namespace
}  // namespace cproxy::bench

int main(int argc, char** argv) {
  try {
    return cproxy::bench::run(cproxy::bench::parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "connect-relay-bench: %s\n", e.what());
    return 1;
  }
}
