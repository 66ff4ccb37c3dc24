// What route_feed's watch thread waits on: a file that may change (inotify on its folder, or stat()
// polling behind the same interface) and the processes named in it (pidfds, or kill(pid, 0) checks).
// Private to src/control. Neither reads the file: they only say when to read it again.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cproxy::control::feed_watch {

class file_watch {
 public:
  virtual ~file_watch() = default;
  // A descriptor that turns readable when the file may have changed, or -1.
  virtual int fd() const noexcept = 0;
  // How long until changed() wants asking even if fd() stays quiet (polling, or re-arming a lost watch).
  virtual std::chrono::milliseconds next_check() const noexcept = 0;
  // Takes what happened (events, or a new stat()); true when the file may have changed.
  virtual bool changed() = 0;
};

// inotify on the folder of `path` (so atomic replacement by rename, deletion and re-creation are all
// seen), filtered by the file's name. A folder that is missing or goes away is looked for again every
// `retry`. nullptr where inotify does not exist (not Linux) or cannot start (out of instances).
std::unique_ptr<file_watch> make_inotify_watch(const std::string& path, std::chrono::milliseconds retry,
                                               std::string& error);

// stat() every `interval`: a change of existence, inode, device, size or modification time.
std::unique_ptr<file_watch> make_polling_watch(const std::string& path, std::chrono::milliseconds interval);

// The pids of live entries, watched for their end: a pidfd each where pidfd_open() works (it turns
// readable when the process exits), else a kill(pid, 0) check every `interval`.
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
    int pidfd = -1;
    std::chrono::steady_clock::time_point next;
  };
  std::chrono::milliseconds interval_;
  bool use_pidfds_;
  std::map<int, tracked> live_;  // by pid
  std::set<int> exited_;         // seen ending through a pidfd, while the file still names them
};

}  // namespace cproxy::control::feed_watch
