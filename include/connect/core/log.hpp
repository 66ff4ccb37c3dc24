// The process log: one line per event, each starting with an ISO-8601 UTC timestamp with milliseconds.
// Thread-safe; writes to stderr until a log file is opened. Access lines (one per request unless --quiet)
// go through it too.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace cproxy::log {

enum class level { debug, info, warn, error };

void write(level lv, std::string_view message);
void set_min_level(level lv);
// Appends to `path` from now on (created 0600), never through a symbolic link (O_NOFOLLOW). Returns
// false if the file cannot be opened; the log then goes where it went before.
bool open_file(const std::string& path);
// Opens the file of open_file() again (after logrotate moved it: SIGHUP). False if it cannot (a link
// now stands there, say): the log stays on the file opened before, which gets a warning line saying so.
bool reopen();
std::string iso8601_now();

template <class... Args>
void line(level lv, Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  write(lv, os.str());
}
template <class... Args>
void info(Args&&... args) {
  line(level::info, std::forward<Args>(args)...);
}
template <class... Args>
void warn(Args&&... args) {
  line(level::warn, std::forward<Args>(args)...);
}
template <class... Args>
void error(Args&&... args) {
  line(level::error, std::forward<Args>(args)...);
}

}  // namespace cproxy::log
