// Implementation of hub_poller.hpp: the thread makes the context and runs the poll loop on it with
// block_on; stop() reaches the loop only through context::post (the one call another thread may make
// besides stop), as a cancel_all that ends the request or the pause in progress.
#include "hub_poller.hpp"

#include <mutex>
#include <thread>

#include "connect/config/version.hpp"
#include "connect/core/log.hpp"
#include "connect/feed/route_feed.hpp"
#include "connect/io/block_on.hpp"
#include "connect/io/select_backend.hpp"
#include "connect/io/timer.hpp"
#include "hub_client.hpp"

namespace cproxy::control {

struct hub_poller::state {
  hub_poll_config config;
  publisher publish;
  std::thread thread;

  std::mutex mutex;  // ctx and stop_requested: stop() runs on another thread
  io::context* ctx = nullptr;
  bool stop_requested = false;

  // The loop's own.
  bool down = false;
  std::vector<std::string> warnings;

  state(hub_poll_config c, publisher p) : config(std::move(c)), publish(std::move(p)) {}

  // One answer (or failure): an outage is logged when it begins, not at every poll.
  void take(const hub_http::fetch_result& r) {
    std::string why;
    hub_services_result services;
    if (r.ec) {
      why = r.detail.empty() ? r.ec.message() : r.detail;
    } else if (r.status != 200) {
      why = "it answered " + std::to_string(r.status);
      if (r.status == 401 || r.status == 403) why += " (is the apiKey right?)";
    } else {
      services = parse_hub_services(r.body);
      if (!services.error.empty()) why = services.error;
    }
    if (!why.empty()) {
      if (!down)
        log::warn("hub: ", config.url_text, " unavailable: ", why, "; keeping ", config.kept,
                  " hub route(s)");
      down = true;
      return;
    }
    if (down) log::info("hub: ", config.url_text, " recovered");
    down = false;
    if (services.warnings != warnings) {
      for (const std::string& w : services.warnings) log::warn("hub: ", w);
      warnings = services.warnings;
    }
    config.kept = services.routes.size();
    publish(std::move(services.routes));
  }

  void run() {
    std::unique_ptr<io::context> own;
    try {
      own = io::make_context(config.io);
    } catch (const std::exception& e) {
      log::error("hub: cannot make an io context (", e.what(), "); not polling ", config.url_text);
      return;
    }
    {
      std::lock_guard lock(mutex);
      if (stop_requested) return;
      ctx = own.get();
    }
    try {
      io::block_on(*own, poll_loop(this, own.get()));
    } catch (const std::exception& e) {
      log::error("hub: polling stopped: ", e.what());
    }
    std::lock_guard lock(mutex);
    ctx = nullptr;
  }

  static coro::task<void> poll_loop(state* s, io::context* ctx) {
    io::timer pause(*ctx);
    const std::string target = s->config.where.path + "/v1/services";
    const hub_http::header_list headers{{"x-api-key", s->config.api_key},
                                        {"Accept", "application/json"},
                                        {"User-Agent", std::string("connect-proxy/") + version}};
    for (;;) {
      coro::task<hub_http::fetch_result> asking =
          hub_http::get(ctx, s->config.where, target, headers, s->config.timeout);
      const hub_http::fetch_result r = co_await std::move(asking);
      if (r.ec == hub_http::hub_errc::cancelled) co_return;
      s->take(r);
      auto waiting = pause.wait(s->config.interval);
      const std::error_code waited = co_await waiting;
      if (waited) co_return;  // cancelled: the stop
    }
  }
};

hub_poller::hub_poller(hub_poll_config config, publisher publish)
    : state_(std::make_unique<state>(std::move(config), std::move(publish))) {}

hub_poller::~hub_poller() {
  stop();
}

void hub_poller::start() {
  state& s = *state_;
  s.thread = std::thread([&s] { s.run(); });
}

void hub_poller::stop() {
  state& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.stop_requested = true;
    if (io::context* c = s.ctx) c->post([c] { c->cancel_all(); });
  }
  if (s.thread.joinable()) s.thread.join();
}

}  // namespace cproxy::control
