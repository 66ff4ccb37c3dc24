// Implementation of route_feed_watch.hpp.
#include "route_feed_watch.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "connect/config/active_routes.hpp"

namespace cproxy::control::feed_watch {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds until(clock::time_point t) {
  const auto left = std::chrono::ceil<milliseconds>(t - clock::now());
  return std::max(left, milliseconds(0));
}

class polling_watch final : public file_watch {
 public:
  polling_watch(std::string path, milliseconds interval) : path_(std::move(path)), interval_(interval) {
    seen_ = look();
    next_ = clock::now() + interval_;
  }
  int fd() const noexcept override { return -1; }
  milliseconds next_check() const noexcept override { return until(next_); }
  bool changed() override {
    if (clock::now() < next_) return false;
    next_ = clock::now() + interval_;
    const snapshot now = look();
    if (now == seen_) return false;
    seen_ = now;
    return true;
  }

 private:
  struct snapshot {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long long mtime_s = 0;
    long mtime_ns = 0;
    bool operator==(const snapshot&) const = default;
  };
  snapshot look() const {
    snapshot s;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return s;
    s.exists = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime_s = st.st_mtim.tv_sec;
    s.mtime_ns = st.st_mtim.tv_nsec;
    return s;
  }
  std::string path_;
  milliseconds interval_;
  snapshot seen_;
  clock::time_point next_;
};

}  // namespace

std::unique_ptr<file_watch> make_inotify_watch(const std::string& path, milliseconds retry,
                                               std::string& error) {
  return platform::watch_file(path, retry, error);
}

std::unique_ptr<file_watch> make_polling_watch(const std::string& path, milliseconds interval) {
  return std::make_unique<polling_watch>(path, interval);
}

pid_watch::~pid_watch() = default;

bool pid_watch::alive(int pid) const {
  return !exited_.contains(pid) && process_alive(pid);
}

void pid_watch::track(const std::set<int>& named, const std::set<int>& live) {
  std::erase_if(exited_, [&](int pid) { return !named.contains(pid); });
  for (auto it = live_.begin(); it != live_.end();) {
    if (live.contains(it->first)) {
      ++it;
      continue;
    }
    it = live_.erase(it);
  }
  for (int pid : live) {
    if (live_.contains(pid)) continue;
    tracked t;
    // No handle (a kernel without pidfds, a seccomp profile that refuses them): that pid is polled.
    if (use_pidfds_) t.handle = platform::process_handle::open(pid);
    t.next = clock::now() + interval_;
    live_.emplace(pid, std::move(t));
  }
}

std::vector<int> pid_watch::fds() const {
  std::vector<int> out;
  for (const auto& [pid, t] : live_)
    if (t.handle.valid()) out.push_back(t.handle.fd());
  return out;
}

milliseconds pid_watch::next_check() const noexcept {
  milliseconds soonest = milliseconds::max();
  for (const auto& [pid, t] : live_)
    if (!t.handle.valid()) soonest = std::min(soonest, until(t.next));
  return soonest;
}

bool pid_watch::check(const std::vector<int>& ready) {
  bool ended = false;
  const auto now = clock::now();
  for (auto it = live_.begin(); it != live_.end();) {
    tracked& t = it->second;
    bool gone = false;
    if (t.handle.valid()) {
      if (std::find(ready.begin(), ready.end(), t.handle.fd()) != ready.end()) {
        gone = true;
        exited_.insert(it->first);
      }
    } else if (now >= t.next) {
      gone = !process_alive(it->first);
      t.next = now + interval_;
    }
    if (!gone) {
      ++it;
      continue;
    }
    it = live_.erase(it);
    ended = true;
  }
  return ended;
}

}  // namespace cproxy::control::feed_watch
