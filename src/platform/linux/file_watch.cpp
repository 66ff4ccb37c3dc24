// Linux implementation of connect/platform/file_watch.hpp: inotify on the folder of the file, filtered
// by the file's name, so that atomic replacement by rename, deletion and re-creation are all seen.
#include "connect/platform/file_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace cproxy::platform {
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

}  // namespace

std::unique_ptr<file_watch> watch_file(const std::string& path, milliseconds retry, std::string& error) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    error = std::string("inotify: ") + std::strerror(errno);
    return nullptr;
  }
  auto w = std::make_unique<inotify_watch>(fd, path, retry);
  if (!w->arm(error)) return nullptr;
  return w;
}

}  // namespace cproxy::platform
