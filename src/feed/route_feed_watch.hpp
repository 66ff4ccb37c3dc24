// What route_feed's watch thread waits on: a file that may change (the platform's watch, inotify on
// Linux, or stat() polling behind the same interface) and the processes named in it (the platform's
// process handles, pidfds on Linux, or kill(pid, 0) checks).
// Private to src/control. Neither reads the file: they only say when to read it again.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "connect/platform/file_watch.hpp"
#include "connect/platform/process.hpp"

namespace cproxy::control::feed_watch {

using platform::file_watch;

// The platform's watch of `path` (platform::watch_file; inotify on its folder on Linux): atomic
// replacement by rename, deletion and re-creation are all seen. A folder that is missing or goes away is
// looked for again every `retry`. nullptr where it cannot start (out of instances).
std::unique_ptr<file_watch> make_inotify_watch(const std::string& path, std::chrono::milliseconds retry,
                                               std::string& error);

// stat() every `interval`: a change of existence, inode, device, size or modification time.
std::unique_ptr<file_watch> make_polling_watch(const std::string& path, std::chrono::milliseconds interval);

// The pids of live entries, watched for their end: a process handle each where the platform gives one
// (its descriptor turns readable when the process exits), else a kill(pid, 0) check every `interval`.
class pid_watch {
 public:
  // `use_pidfds` false: kill(pid, 0) checks only (tests reach the fallback with it).
  explicit pid_watch(std::chrono::milliseconds interval, bool use_pidfds = true)
      : interval_(interval), use_pidfds_(use_pidfds) {}
  ~pid_watch();
  pid_watch(const pid_watch&) = delete;
  pid_watch& operator=(const pid_watch&) = delete;

  // Alive for route purposes: process_alive(), and not seen exiting through its pidfd (a zombie whose
  // parent has not reaped it yet still answers kill(pid, 0), but its service is gone).
  bool alive(int pid) const;
  // After each parse of the file: `named` are all pids its entries give, `live` those kept. Exit marks of
  // pids no longer named are forgotten (a reused pid in a new entry is a new process).
  void track(const std::set<int>& named, const std::set<int>& live);

  std::vector<int> fds() const;                           // to poll for POLLIN
  std::chrono::milliseconds next_check() const noexcept;  // milliseconds::max() when nothing needs it
  // After poll(): `ready` are the fds that turned readable. True when a tracked process ended.
  bool check(const std::vector<int>& ready);

 private:
  struct tracked {
    platform::process_handle handle;
    std::chrono::steady_clock::time_point next;
  };
  std::chrono::milliseconds interval_;
  bool use_pidfds_;
  std::map<int, tracked> live_;  // by pid
  std::set<int> exited_;         // seen ending through a pidfd, while the file still names them
};

}  // namespace cproxy::control::feed_watch
