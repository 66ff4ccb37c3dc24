// A watched file: a descriptor that turns readable when it may have changed, behind one interface that
// a polling watch (feed) implements as well. Linux: inotify on the file's folder.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace cproxy::platform {

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

// The platform's own watch of `path`: replacement by rename, deletion and re-creation are all seen; a
// folder that is missing or goes away is looked for again every `retry`. nullptr with `error` where it
// cannot start (out of instances): the caller polls instead.
std::unique_ptr<file_watch> watch_file(const std::string& path, std::chrono::milliseconds retry,
                                       std::string& error);

}  // namespace cproxy::platform
