// Implementation of connect/feed/route_feed.hpp: two threads (the file and its pids: poll() on a stop pipe;
// the hub: hub_poller's io::context) update
// their source under one mutex and rebuild the table from all three; a stop pipe wakes both.
#include "connect/feed/route_feed.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "connect/config/active_routes.hpp"
#include "connect/config/config_file.hpp"
#include "connect/config/proxy_options.hpp"
#include "connect/config/settings.hpp"
#include "connect/core/log.hpp"
#include "hub_poller.hpp"
#include "route_feed_http.hpp"
#include "route_feed_watch.hpp"

namespace cproxy::control {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int poll_timeout(milliseconds wait) {
  if (wait == milliseconds::max()) return -1;
  return static_cast<int>(std::clamp<long long>(wait.count(), 0, 60'000));
}

}  // namespace

route_feed_config feed_config(const settings& s, const proxy_options& options) {
  route_feed_config c;
  c.home = s.home;
  c.config_routes = s.config_routes;
  c.domains = s.domains;
  c.hub_url = s.hub;
  // resolve_settings has read and checked this file already; reading it again only for the key keeps
  // `settings` as it is. A file that fails now (changed since) just means no key.
  const bool strict = options.config_path.has_value();
  const config_result read =
      read_config_file(strict ? *options.config_path : s.home + "/config.json", strict);
  if (read.value && read.value->api_key && !read.value->api_key->empty()) c.api_key = read.value->api_key;
  return c;
}

struct route_feed::state {
  route_feed_config config;
  published<route::table>& out;
  std::string file;
  std::string file_prefix;  // "active routes file PATH: ", as read_active_routes() words it
  int stop_read = -1, stop_write = -1;
  bool started = false, stopped = false;
  std::thread watch_thread;
  std::unique_ptr<hub_poller> hub;

  std::mutex mutex;  // the sources and `last`: both threads republish
  std::vector<route::route> hub_routes, reach_routes;
  std::shared_ptr<const route::table> last;

  // The watch thread's own (start() uses them before the thread exists).
  std::unique_ptr<feed_watch::file_watch> watcher;
  feed_watch::pid_watch pids;
  std::optional<std::string> good_text;  // the last usable file text; none while the file is missing
  std::string file_error;                // the problem logged last, until the file is usable again
  std::vector<std::string> file_warnings;

  state(route_feed_config c, published<route::table>& o)
      : config(std::move(c)), out(o), pids(config.pid_interval) {
    file = config.home + "/active-routes.json";
    file_prefix = "active routes file " + file + ": ";
  }

  void republish() {
    std::vector<route::route> all = hub_routes;
    all.insert(all.end(), config.config_routes.begin(), config.config_routes.end());
    all.insert(all.end(), reach_routes.begin(), reach_routes.end());
    auto next = std::make_shared<const route::table>(std::move(all), config.domains);
    std::string change = describe_route_changes(*last, *next);
    if (change.empty()) return;
    out.publish(next);
    last = std::move(next);
    log::info(change);
  }

  // ---- active-routes.json ----

  void apply(const active_routes_result& r) {
    if (!file_error.empty()) {
      log::info(file_prefix, "usable again");
      file_error.clear();
    }
    if (r.warnings != file_warnings) {
      for (const std::string& w : r.warnings) log::warn(file_prefix, w);
      file_warnings = r.warnings;
    }
    std::lock_guard lock(mutex);
    reach_routes = r.routes;
    republish();
  }

  void problem(const std::string& what) {
    if (what == file_error) return;
    file_error = what;
    log::warn(file_prefix, what, "; keeping the last good routes");
  }

  active_routes_result parse(const std::string& text) {
    std::set<int> named, live;
    active_routes_result r = parse_active_routes(text, [&](int pid) {
      named.insert(pid);
      const bool alive = pids.alive(pid);
      if (alive) live.insert(pid);
      return alive;
    });
    if (r.error.empty()) pids.track(named, live);
    return r;
  }

  void reload() {
    std::string text;
    if (const int err = read_small_file(file, text, max_route_file_bytes, links::refuse); err != 0) {
      if (err != ENOENT) return problem(std::string("cannot read: ") + std::strerror(err));
      good_text.reset();  // deleted: its routes go away (a problem it had goes with it, unannounced)
      file_error.clear();
      pids.track({}, {});
      return apply({});
    }
    if (text == good_text) {  // a rewrite with the same text: only the pids may tell something new
      if (!file_error.empty()) apply(parse(text));
      return;
    }
    active_routes_result r = parse(text);
    if (!r.error.empty()) return problem(r.error);
    good_text = std::move(text);
    apply(r);
  }

  void watch_loop() {
    // A reload is pending when `pending`; plain time points, not optionals: GCC 12 warns falsely
    // (-Wmaybe-uninitialized) about optional<time_point> here.
    bool pending = false;
    clock::time_point first_event{};
    clock::time_point due{};
    std::vector<pollfd> fds;
    for (;;) {
      milliseconds wait = std::min(watcher->next_check(), pids.next_check());
      if (pending)
        wait = std::min(wait, std::max(milliseconds(0), std::chrono::ceil<milliseconds>(due - clock::now())));
      fds.assign({{stop_read, POLLIN, 0}});
      if (watcher->fd() >= 0) fds.push_back({watcher->fd(), POLLIN, 0});
      for (int fd : pids.fds()) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), poll_timeout(wait)) < 0 && errno != EINTR) {
        log::error("routes: poll failed: ", std::strerror(errno), "; no longer watching ", file);
        return;
      }
      if (fds[0].revents) return;

      // Pids first: a reload below may close a pidfd and open another with the same number.
      std::vector<int> ready;
      for (std::size_t i = watcher->fd() >= 0 ? 2 : 1; i < fds.size(); ++i)
        if (fds[i].revents) ready.push_back(fds[i].fd);
      if (pids.check(ready) && good_text) apply(parse(*good_text));

      if (watcher->changed()) {
        // Debounce: a burst of events (create, write, close) becomes one read, 50 ms after the last one,
        // but never later than ten periods after the first, so a file rewritten nonstop is still read.
        const auto now = clock::now();
        if (!pending) first_event = now;
        pending = true;
        due = std::min(now + config.debounce, first_event + 10 * config.debounce);
      }
      if (pending && clock::now() >= due) {
        pending = false;
        reload();
      }
    }
  }
};

route_feed::route_feed(route_feed_config config, published<route::table>& out)
    : state_(std::make_unique<state>(std::move(config), out)) {}

route_feed::~route_feed() {
  stop();
  if (state_->stop_read >= 0) ::close(state_->stop_read);
  if (state_->stop_write >= 0) ::close(state_->stop_write);
}

void route_feed::start() {
  state& s = *state_;
  if (s.started || s.stopped) return;
  int p[2];
  if (::pipe(p) != 0) throw std::system_error(errno, std::generic_category(), "route feed: pipe");
  s.stop_read = p[0];
  s.stop_write = p[1];
  ::fcntl(p[0], F_SETFD, FD_CLOEXEC);
  ::fcntl(p[1], F_SETFD, FD_CLOEXEC);

  // The watch exists before the first read, so no change falls between the two.
  if (s.config.watch == route_feed_config::watch_kind::automatic) {
    std::string error;
    s.watcher = feed_watch::make_inotify_watch(s.file, s.config.poll_interval, error);
    if (!s.watcher)
      log::warn("routes: ", error, "; checking ", s.file, " every ", s.config.poll_interval.count(), " ms");
  }
  if (!s.watcher) s.watcher = feed_watch::make_polling_watch(s.file, s.config.poll_interval);
  {
    std::lock_guard lock(s.mutex);
    s.last = s.out.load();
  }
  s.reload();
  {
    // reload() publishes only what it read; seeded hub routes must be in the table even when the file
    // is missing or unusable.
    std::lock_guard lock(s.mutex);
    s.republish();
  }

  std::optional<hub_http::url> hub;
  if (!s.config.api_key) {
    log::info("hub: no apiKey configured; not polling");
  } else {
    std::string error;
    hub = hub_http::parse_url(s.config.hub_url, error);
    if (!hub) log::warn("hub: not polling ", s.config.hub_url, ": ", error);
  }

  s.started = true;
  s.watch_thread = std::thread([&s] { s.watch_loop(); });
  if (hub) {
    log::info("hub: polling ", s.config.hub_url, " every ", s.config.hub_interval.count() / 1000.0, " s");
    hub_poll_config poll{*hub,
                         s.config.hub_url,
                         *s.config.api_key,
                         s.config.hub_interval,
                         s.config.hub_timeout,
                         s.config.hub_io,
                         0};
    {
      std::lock_guard lock(s.mutex);
      poll.kept = s.hub_routes.size();
    }
    try {
      s.hub = std::make_unique<hub_poller>(std::move(poll), [&s](std::vector<route::route> routes) {
        std::lock_guard lock(s.mutex);
        s.hub_routes = std::move(routes);
        s.republish();
      });
      s.hub->start();
    } catch (...) {
      stop();
      throw;
    }
  }
}

void route_feed::seed_hub_routes(std::vector<route::route> routes) {
  state& s = *state_;
  if (s.started || s.stopped) return;
  std::lock_guard lock(s.mutex);
  s.hub_routes = std::move(routes);
}

std::vector<route::route> route_feed::hub_routes() const {
  std::lock_guard lock(state_->mutex);
  return state_->hub_routes;
}

const std::string& route_feed::hub_url() const noexcept {
  return state_->config.hub_url;
}

bool route_feed::polls_hub() const noexcept {
  return state_->config.api_key.has_value();
}

void route_feed::stop() {
  state& s = *state_;
  if (!s.started || s.stopped) {
    s.stopped = true;
    return;
  }
  s.stopped = true;
  if (s.hub) s.hub->stop();
  const char one = 1;
  while (::write(s.stop_write, &one, 1) < 0 && errno == EINTR) {
  }
  if (s.watch_thread.joinable()) s.watch_thread.join();
}

}  // namespace cproxy::control
