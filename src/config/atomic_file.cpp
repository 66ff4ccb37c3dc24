// Implementation of connect/config/atomic_file.hpp.
#include "connect/config/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace cproxy::control {
namespace {

// ".tmp." and 16 hex digits from getrandom: a name nobody can guess ahead and plant.
std::string random_suffix() {
  std::uint64_t bits = 0;
  for (int tries = 0; tries < 8; ++tries) {
    const ssize_t n = ::getrandom(&bits, sizeof bits, 0);
    if (n == static_cast<ssize_t>(sizeof bits)) break;
    if (n < 0 && errno != EINTR) break;
  }
  char text[24];
  std::snprintf(text, sizeof text, ".tmp.%016llx", static_cast<unsigned long long>(bits));
  return text;
}

}  // namespace

std::string write_file_atomically(const std::string& path, std::string_view text, mode_t mode) {
  // O_EXCL: a name that exists, a planted link included, is never opened; try a few new names, then
  // give up (something fills the folder with our names, or getrandom keeps failing).
  std::string temp;
  int fd = -1;
  for (int tries = 0; tries < 16 && fd < 0; ++tries) {
    temp = path + random_suffix();
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return "cannot write " + temp + ": " + std::strerror(errno);
  const auto failed = [&temp](int open_fd) {
    const std::string reason = "cannot write " + temp + ": " + std::strerror(errno);
    if (open_fd >= 0) ::close(open_fd);
    ::unlink(temp.c_str());
    return reason;
  };
  if (::fchmod(fd, mode) != 0) return failed(fd);  // the umask may have taken bits away
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failed(fd);
    done += static_cast<std::size_t>(n);
  }
  // On disk before the rename: after a crash the name holds the old file or the whole new one.
  if (::fsync(fd) != 0) return failed(fd);
  if (::close(fd) != 0) return failed(-1);
  // rename() replaces a link at `path` itself, never the file it points to.
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = "cannot rename " + temp + " to " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return reason;
  }
  return {};
}

}  // namespace cproxy::control
