// Implementation of connect/daemon/hosts_command.hpp: the file side. The new text (hosts_block.cpp) goes
// into a temporary file beside the hosts file, with its mode and owner, synced and renamed over it; where
// that cannot be done (a bind-mounted /etc/hosts in a container: rename gives EBUSY; a folder we may not
// create in; an owner we may not give) the file is rewritten in place. Concurrent runs take a lock on
// the folder, so each reads what the previous one wrote.
#include "connect/daemon/hosts_command.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "connect/config/config_file.hpp"
#include "connect/config/settings.hpp"
#include "connect/daemon/control_socket.hpp"
#include "connect/daemon/current_routes.hpp"
#include "connect/daemon/hosts_block.hpp"
#include "connect/daemon/state_file.hpp"

namespace cproxy::control {
namespace {

constexpr std::size_t max_hosts_bytes = std::size_t{16} << 20;

std::string hosts_path() {
  const char* env = std::getenv("HOSTS_FILE");
  return env && *env ? env : "/etc/hosts";
}

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A word as a POSIX shell reads it: quoted only when it needs to be.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && word.find_first_not_of(
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_@%+=:,./-") == std::string::npos;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string own_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("connect");
}

// The command root runs to do the same: sudo resets the environment and HOME, so the home folder (the
// routes) and HOSTS_FILE are named, and the binary by its absolute path (sudo's secure_path may lack it).
std::string sudo_line(bool remove, const proxy_options& options, const std::string& home) {
  std::string line = "sudo env";
  if (!remove) line += " " + shell_word("PRIVATECONNECT_HOME=" + home);
  if (const char* env = std::getenv("HOSTS_FILE"); env && *env)
    line += " " + shell_word("HOSTS_FILE=" + std::string(env));
  line += " " + shell_word(own_executable()) + " proxy hosts";
  if (remove) return line + " --remove";
  if (options.config_path) {
    char* absolute = ::realpath(options.config_path->c_str(), nullptr);
    line += " --config " + shell_word(absolute ? absolute : *options.config_path);
    std::free(absolute);
  }
  for (const std::string& d : options.domains) line += " --domain " + shell_word(d);
  return line;
}

std::string random_suffix() {
  unsigned long long bits = 0;
  if (::getrandom(&bits, sizeof bits, 0) != static_cast<ssize_t>(sizeof bits))
    bits ^= static_cast<unsigned long long>(::getpid());
  char text[32];
  std::snprintf(text, sizeof text, ".connect-proxy.%016llx", bits);
  return text;
}

bool write_all(int fd, std::string_view text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// In place, under a lock on the file itself: a reader may see a half-written file for a moment, which is
// why this is the fallback only. Returns 0 or the errno.
int rewrite_in_place(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  int error = 0;
  if (::flock(fd, LOCK_EX) != 0 || !write_all(fd, text) ||
      ::ftruncate(fd, static_cast<off_t>(text.size())) != 0 || ::fsync(fd) != 0)
    error = errno;
  ::close(fd);
  return error;
}

// Temporary file, mode and owner of the old file, fsync, rename, fsync of the folder. Returns 0 or the
// errno; EXDEV/EBUSY/EPERM/EACCES before the rename fall back to rewriting in place.
int write_hosts(const std::string& path, const struct stat* old, std::string_view text, int dir_fd) {
  const std::string temp = path + random_suffix();
  const mode_t mode = old ? (old->st_mode & 07777) : 0644;
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return old ? rewrite_in_place(path, text) : errno;
  const auto give_up = [&temp, fd](int error) {
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  };
  if (old && (old->st_uid != ::geteuid() || old->st_gid != ::getegid()) &&
      ::fchown(fd, old->st_uid, old->st_gid) != 0) {
    // A file of another owner that we may write but not give away: keep its inode and owner.
    give_up(0);
    return rewrite_in_place(path, text);
  }
  if (::fchmod(fd, mode) != 0 || !write_all(fd, text) || ::fsync(fd) != 0) return give_up(errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return error;
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    // A mount point (Docker bind-mounts /etc/hosts) cannot be renamed over.
    if (old && (error == EBUSY || error == EXDEV)) return rewrite_in_place(path, text);
    return error;
  }
  ::fsync(dir_fd);
  return 0;
}

// Under sudo, running_proxy() finds no proxy (it trusts only a proxy.sock peer of the same uid), and
// the hub routes would be missed: root asks the proxy that proxy-state.json names, of the home folder's
// owner, as the kernel reports the peer.
std::string status_for_root(const std::string& home) {
  struct stat st {};
  const auto named = read_state(home);
  if (::geteuid() != 0 || !named || ::stat(home.c_str(), &st) != 0) return {};
  control_peer peer;
  auto answer = control_request(control_socket_path(home), R"({"cmd":"status"})", &peer);
  return answer && peer.pid == named->pid && peer.uid == st.st_uid ? std::move(*answer) : std::string();
}

void print_names(const std::vector<std::string>& lines) {
  for (const std::string& l : lines) std::cout << "  " << l << "\n";
}

int cannot_write(const std::string& path, int error, bool remove, const proxy_options& options,
                 const std::string& home) {
  std::cerr << "[x] Cannot write " << path << ": " << std::strerror(error) << "\n";
  if ((error == EACCES || error == EPERM) && ::geteuid() != 0)
    std::cerr << "  Run: " << sudo_line(remove, options, home) << "\n";
  return 1;
}

// The lines the block should hold: one per route and dev domain; none when removing.
std::vector<std::string> wanted_block(bool remove, const settings& s) {
  if (remove) return {};
  std::string status;
  if (!s.home.empty() && !running_proxy(s.home, &status)) status = status_for_root(s.home);
  std::vector<std::string> names;
  for (const route::route& r : current_routes(s, status)) names.push_back(r.name);
  return hosts_block_lines(names, s.domains);
}

// Why `path` cannot be edited in place of a regular file, or "" (a missing file is fine).
std::string hosts_file_problem(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? "" : "Cannot read " + path + ": " + std::strerror(errno);
  if (S_ISLNK(st.st_mode)) {
    // Renaming over a link would replace it with a file, and writing through it may reach a file that
    // is not ours (a read-only store on NixOS): neither is done.
    char target[4096];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
    return "Cannot write " + path + ": it is a symbolic link" +
           (n > 0 ? " to " + std::string(target, static_cast<std::size_t>(n)) : std::string());
  }
  if (!S_ISREG(st.st_mode)) return "Cannot write " + path + ": not a regular file";
  return "";
}

void print_outcome(const std::string& path, bool remove, const std::vector<std::string>& body,
                   const hosts_edit& edit, bool changed) {
  if (remove) {
    if (edit.had_block) {
      std::cout << "[ok] Removed the connect-proxy block from " << path << "\n";
    } else {
      std::cout << "[!] " << path << " has no connect-proxy block\n";
    }
  } else if (body.empty()) {
    std::cout << "[!] No routes yet — " << path << " has no connect-proxy block\n";
  } else {
    std::cout << (changed ? "[ok] Wrote " : "[ok] Up to date: ") << body.size() << " name(s) "
              << (changed ? "to " : "in ") << path << ":\n";
    print_names(body);
  }
}

}  // namespace

int run_hosts(bool remove, const proxy_options& options) {
  settings s;
  std::vector<std::string> warnings;
  if (const std::string error = resolve_settings(options, s, warnings); !error.empty()) {
    std::cerr << "[x] " << error << "\n";
    return 1;
  }
  const std::vector<std::string> body = wanted_block(remove, s);
  const std::string path = hosts_path();
  if (const std::string problem = hosts_file_problem(path); !problem.empty()) {
    std::cerr << "[x] " << problem << "\n";
    return 1;
  }

  // One run at a time per folder: a second one waits, then reads what the first wrote.
  const int dir_fd = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return cannot_write(path, errno, remove, options, s.home);
  struct dir_closer {
    int fd;
    ~dir_closer() { ::close(fd); }
  } closer{dir_fd};
  ::flock(dir_fd, LOCK_EX);

  std::string old_text;
  struct stat now {};
  const bool still_exists = ::lstat(path.c_str(), &now) == 0;
  if (still_exists) {
    if (const int error = read_small_file(path, old_text, max_hosts_bytes, links::refuse); error != 0) {
      std::cerr << "[x] Cannot read " << path << ": " << std::strerror(error) << "\n";
      return 1;
    }
  }
  const hosts_edit edit = edit_hosts_block(old_text, body);
  if (!edit.error.empty()) {
    std::cerr << "[x] " << path << ": " << edit.error
              << " — not changed; fix the connect-proxy lines by hand\n";
    return 1;
  }
  const bool changed = edit.text != old_text;
  if (changed) {
    // Not ours to change unless we could write the file itself (rename only needs the folder).
    if (still_exists && ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0)
      return cannot_write(path, errno, remove, options, s.home);
    if (const int error = write_hosts(path, still_exists ? &now : nullptr, edit.text, dir_fd); error != 0)
      return cannot_write(path, error, remove, options, s.home);
  }
  print_outcome(path, remove, body, edit, changed);
  return 0;
}

}  // namespace cproxy::control
