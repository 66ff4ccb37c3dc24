// Implementation of connect/control/atomic_file.hpp.
#include "connect/control/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cproxy::control {

std::string write_file_atomically(const std::string& path, std::string_view text, mode_t mode) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const auto failed = [&temp](int fd) {
    const std::string reason = "cannot write " + temp + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    std::remove(temp.c_str());
    return reason;
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return failed(-1);
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
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = "cannot rename " + temp + " to " + path + ": " + std::strerror(errno);
    std::remove(temp.c_str());
    return reason;
  }
  return {};
}

}  // namespace cproxy::control
