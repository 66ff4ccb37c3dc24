// Implementation of route_feed_watch.hpp.
#include "route_feed_watch.hpp"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "connect/config/active_routes.hpp"

#if defined(__linux__)
#include <sys/inotify.h>
#endif

namespace cproxy::control::feed_watch {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds until(clock::time_point t) {
  const auto left = std::chrono::ceil<milliseconds>(t - clock::now());
  return std::max(left, milliseconds(0));
}

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
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

#if defined(__linux__)
class inotify_watch final : public file_watch {
 public:
  // IN_MODIFY besides the close: a writer that keeps the file open is seen too; the debounce merges it
  // with the IN_CLOSE_WRITE of an ordinary write.
  static constexpr std::uint32_t file_events =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY;
  static constexpr std::uint32_t folder_events = IN_DELETE_SELF | IN_MOVE_SELF;

  inotify_watch(int fd, std::string path, milliseconds retry)
      : fd_(fd), folder_(folder_of(path)), name_(name_of(path)), retry_(retry) {}
  ~inotify_watch() override { ::close(fd_); }

  // false with `error` when the watch cannot be added for another reason than a missing folder.
  bool arm(std::string& error) {
    wd_ = ::inotify_add_watch(fd_, folder_.c_str(), file_events | folder_events | IN_ONLYDIR);
    if (wd_ >= 0) return true;
    if (errno == ENOENT) {
      next_try_ = clock::now() + retry_;
      return true;
    }
    error = "cannot watch " + folder_ + ": " + std::strerror(errno);
    return false;
  }

  int fd() const noexcept override { return fd_; }
  milliseconds next_check() const noexcept override {
    return wd_ >= 0 ? milliseconds::max() : until(next_try_);
  }

  bool changed() override {
    bool seen = drain();
    if (wd_ < 0 && clock::now() >= next_try_) {
      wd_ = ::inotify_add_watch(fd_, folder_.c_str(), file_events | folder_events | IN_ONLYDIR);
      if (wd_ >= 0) {
        seen = true;  // the folder is back: the file may be in it
      } else {
        next_try_ = clock::now() + retry_;
      }
    }
    return seen;
  }

 private:
  bool drain() {
    bool seen = false;
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;  // EAGAIN: all taken
      for (ssize_t at = 0; at < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        if (ev->mask & IN_Q_OVERFLOW) seen = true;  // events were lost: read again to be sure
        if (ev->wd != wd_ || wd_ < 0) continue;
        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
          // The folder went away (or was renamed: the watch would follow the old inode). Look for the path
          // again; its file is gone from where we read it.
          if (!(ev->mask & IN_IGNORED)) ::inotify_rm_watch(fd_, wd_);
          wd_ = -1;
          next_try_ = clock::now() + retry_;
          seen = true;
          continue;
        }
        if (ev->len > 0 && (ev->mask & file_events) && name_ == ev->name) seen = true;
      }
    }
    return seen;
  }

  int fd_;
  int wd_ = -1;
  std::string folder_, name_;
  milliseconds retry_;
  clock::time_point next_try_;
};
#endif

}  // namespace

std::unique_ptr<file_watch> make_inotify_watch(const std::string& path, milliseconds retry,
                                               std::string& error) {
#if defined(__linux__)
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    error = std::string("inotify: ") + std::strerror(errno);
    return nullptr;
  }
  auto w = std::make_unique<inotify_watch>(fd, path, retry);
  if (!w->arm(error)) return nullptr;
  return w;
#else
  (void)path;
  (void)retry;
  error = "inotify is not available on this platform";
  return nullptr;
#endif
}

std::unique_ptr<file_watch> make_polling_watch(const std::string& path, milliseconds interval) {
  return std::make_unique<polling_watch>(path, interval);
}

pid_watch::~pid_watch() {
  for (auto& [pid, t] : live_)
    if (t.pidfd >= 0) ::close(t.pidfd);
}

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
    if (it->second.pidfd >= 0) ::close(it->second.pidfd);
    it = live_.erase(it);
  }
  for (int pid : live) {
    if (live_.contains(pid)) continue;
    tracked t;
#if defined(SYS_pidfd_open)
    // Linux 5.3. ENOSYS on older kernels, EPERM under some seccomp profiles: those pids are polled.
    if (use_pidfds_) t.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
    t.next = clock::now() + interval_;
    live_.emplace(pid, t);
  }
}

std::vector<int> pid_watch::fds() const {
  std::vector<int> out;
  for (const auto& [pid, t] : live_)
    if (t.pidfd >= 0) out.push_back(t.pidfd);
  return out;
}

milliseconds pid_watch::next_check() const noexcept {
  milliseconds soonest = milliseconds::max();
  for (const auto& [pid, t] : live_)
    if (t.pidfd < 0) soonest = std::min(soonest, until(t.next));
  return soonest;
}

bool pid_watch::check(const std::vector<int>& ready) {
  bool ended = false;
  const auto now = clock::now();
  for (auto it = live_.begin(); it != live_.end();) {
    tracked& t = it->second;
    bool gone = false;
    if (t.pidfd >= 0) {
      if (std::find(ready.begin(), ready.end(), t.pidfd) != ready.end()) {
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
    if (t.pidfd >= 0) ::close(t.pidfd);
    it = live_.erase(it);
    ended = true;
  }
  return ended;
}

}  // namespace cproxy::control::feed_watch
