// Implementation of the process log (see connect/core/log.hpp).
#include "connect/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace cproxy::log {
namespace {
std::mutex mutex_;
int fd_ = STDERR_FILENO;
std::string path_;
std::atomic<level> min_level_{level::info};

const char* name(level lv) {
  switch (lv) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "?";
}
}  // namespace

std::string iso8601_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf, static_cast<int>(ms));
  return out;
}

void set_min_level(level lv) {
  min_level_.store(lv, std::memory_order_relaxed);
}

bool open_file(const std::string& path) {
  // Never through a link: one planted in the home would make us append to a file of someone else's
  // choosing (as root, any file).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  std::lock_guard lock(mutex_);
  if (fd_ != STDERR_FILENO) ::close(fd_);
  fd_ = fd;
  path_ = path;
  return true;
}

bool reopen() {
  std::string path;
  {
    std::lock_guard lock(mutex_);
    path = path_;
  }
  if (path.empty()) return false;
  if (open_file(path)) return true;
  const int err = errno;
  // The line goes where the log went so far, which stays open: no line is lost.
  write(level::warn,
        "cannot reopen " + path + ": " + std::strerror(err) + "; still writing to the file opened before");
  return false;
}

void write(level lv, std::string_view message) {
  if (lv < min_level_.load(std::memory_order_relaxed)) return;
  std::string text = iso8601_now();
  text += ' ';
  text += name(lv);
  text += ' ';
  text += message;
  text += '\n';
  std::lock_guard lock(mutex_);
  // One write() per line keeps lines whole when several processes append to the same file.
  const ssize_t ignored = ::write(fd_, text.data(), text.size());
  (void)ignored;
}

}  // namespace cproxy::log
