// Implementation of hub_lookup.hpp. The lookup thread and the waiting coroutine share one small state:
// the thread posts a wake-up to the context while the waiter still waits, and nothing after.
#include "hub_lookup.hpp"

#include <netdb.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "connect/io/backend.hpp"
#include "connect/io/timer.hpp"
#include "hub_client.hpp"

namespace cproxy::control::hub_http {
namespace {

struct shared_lookup {
  std::mutex mutex;
  io::context* ctx = nullptr;  // null once the waiter has stopped waiting
  io::timer* timer = nullptr;  // the waiter's: cancelled to wake it
  bool done = false;
  std::string problem;  // when done: "" or why there is no address
  std::vector<io::endpoint> addresses;
};

void run_lookup(std::shared_ptr<shared_lookup> s, std::string host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  const int err = errno;
  std::vector<io::endpoint> addresses;
  for (const addrinfo* ai = found; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
      addresses.push_back(io::endpoint::from_sockaddr(ai->ai_addr, ai->ai_addrlen));
  }
  if (found) ::freeaddrinfo(found);
  std::string problem;
  if (rc != 0)
    problem = "cannot look up " + host + ": " + (rc == EAI_SYSTEM ? std::strerror(err) : ::gai_strerror(rc));
  else if (addresses.empty())
    problem = "cannot look up " + host + ": no addresses";

  std::lock_guard lock(s->mutex);
  s->done = true;
  s->problem = std::move(problem);
  s->addresses = std::move(addresses);
  // Posted, never run here: the timer belongs to the context's thread.
  if (s->ctx)
    s->ctx->post([s] {
      std::lock_guard l(s->mutex);
      if (s->timer) s->timer->cancel();
    });
}

}  // namespace

coro::task<lookup_result> lookup(io::context* ctx, std::string host, std::uint16_t port,
                                 std::chrono::milliseconds timeout) {
  lookup_result out;
  auto s = std::make_shared<shared_lookup>();
  io::timer timer(*ctx);
  s->ctx = ctx;
  s->timer = &timer;
  try {
    std::thread(run_lookup, s, host, port).detach();
  } catch (const std::system_error& e) {
    out.ec = hub_errc::lookup_failed;
    out.detail = "cannot look up " + host + ": " + e.what();
    co_return out;
  }
  auto wait = timer.wait(timeout);
  const std::error_code waited = co_await wait;
  {
    const std::lock_guard lock(s->mutex);
    s->ctx = nullptr;
    s->timer = nullptr;
    if (!s->done) {
      // The timer ran out, or a stop cancelled it: the lookup finishes alone.
      out.ec = waited ? hub_errc::cancelled : hub_errc::timed_out;
      if (!waited) out.detail = "timed out looking up " + host;
    } else if (!s->problem.empty()) {
      out.ec = hub_errc::lookup_failed;
      out.detail = s->problem;
    } else {
      out.addresses = s->addresses;
    }
  }
  co_return out;
}

}  // namespace cproxy::control::hub_http
