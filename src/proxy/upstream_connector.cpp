// Implementation of upstream_connector.hpp: the connect_upstream stage's dialling and pooling.
#include "upstream_connector.hpp"

#include <sys/socket.h>

#include <string>
#include <vector>

#include "connect/io/endpoint.hpp"
#include "connect/io/loop_clock.hpp"
#include "connect/io/socket.hpp"
#include "hold.hpp"
#include "upstream_health.hpp"

namespace cproxy::proxy {
namespace {

bool means_not_listening(const std::error_code& ec) {
  return ec == std::errc::connection_refused || ec == std::errc::address_not_available ||
         ec == std::errc::network_unreachable;
}

}  // namespace

std::string upstream_key(const route::route& r) {
  return r.host + ":" + std::to_string(r.port);
}

pooled_connector::pooled_connector(io::context* ctx, upstream_health* health)
    : ctx_(ctx), health_(health), holds_(health ? std::make_unique<upstream_holds>(ctx, health) : nullptr) {}

pooled_connector::~pooled_connector() = default;

void pooled_connector::note_answer(const std::string& key) {
  if (!health_) return;
  const auto now = io::loop_clock::now();
  auto [it, inserted] = reported_.try_emplace(key, now);
  if (!inserted && now - it->second < std::chrono::seconds(1)) return;
  it->second = now;
  health_->answered(key, now);
}

coro::task<dial_result> pooled_connector::connect(const route::route* r, io::duration timeout,
                                                  bool allow_pooled) {
  const std::string key = upstream_key(*r);
  if (allow_pooled) {
    // Bounded by the pool's size; one that closed or holds stray bytes is dropped (closed here).
    while (std::unique_ptr<io::socket_stream> pooled = pool_.take(key)) {
      coro::task<bool> check = pooled->plain_socket()->quiet();
      if (!co_await std::move(check)) continue;
      note_answer(key);
      co_return dial_result{std::move(pooled), true, std::nullopt};
    }
  }
  std::vector<io::endpoint> candidates;
  if (r->host == "localhost") {
    // Dev servers such as Vite may listen on ::1 only: try both, the one that answered last first.
    const io::endpoint v4 = io::endpoint::loopback_v4(r->port);
    const io::endpoint v6 = io::endpoint::loopback_v6(r->port);
    if (pool_.preferred_family(key) == 6) {
      candidates = {v6, v4};
    } else {
      candidates = {v4, v6};
    }
  } else if (const auto ep = io::endpoint::from(r->host, r->port)) {
    candidates = {*ep};
  } else {
    co_return dial_result{
        nullptr, false, upstream_failure(failure_kind::unreachable, "the route's host is not an IP address")};
  }
  failure last = upstream_failure(failure_kind::refused);
  for (const io::endpoint& ep : candidates) {
    std::error_code ec;
    io::socket s = io::socket::open(*ctx_, ep.family(), ec);
    if (ec)
      co_return dial_result{
          nullptr, false,
          failure{failure_source::internal, failure_kind::unreachable, false, false, ec.message()}};
    const std::error_code connected = co_await s.connect(ep, timeout);
    if (!connected) {
      pool_.remember_family(key, ep.family() == AF_INET6 ? 6 : 4);
      note_answer(key);
      co_return dial_result{std::make_unique<io::socket_stream>(std::move(s)), false, std::nullopt};
    }
    // The most telling failure wins: a timeout or an odd error over a plain refusal of the other family.
    if (io::is_timeout(connected)) {
      last = upstream_failure(failure_kind::connect_timeout);
    } else if (!means_not_listening(connected)) {
      last = upstream_failure(failure_kind::unreachable, connected.message());
    }
  }
  co_return dial_result{nullptr, false, std::move(last)};
}

void pooled_connector::give_back(const route::route* r, std::unique_ptr<io::stream> s) {
  // The streams this connector dials are plain ones; any other is closed.
  if (auto* plain = dynamic_cast<io::socket_stream*>(s.get())) {
    s.release();
    pool_.give_back(upstream_key(*r), std::unique_ptr<io::socket_stream>(plain));
  }
}

}  // namespace cproxy::proxy
