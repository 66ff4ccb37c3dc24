// Linux implementation of connect/platform/tcp_listeners.hpp: the socket inodes in /proc/net/tcp and
// tcp6 (state LISTEN), then the processes holding them among /proc/*/fd.
#include "connect/platform/tcp_listeners.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cproxy::platform {
namespace {

// The kernel prints each 32-bit word of the address as the hex of its value in host byte order
// ("0100007F" is 127.0.0.1 on x86): reading the hex back into a word and copying its bytes undoes that
// on any byte order.
bool parse_proc_address(const std::string& hex, ip_address& out) {
  if (hex.size() != 8 && hex.size() != 32) return false;
  unsigned char raw[16];
  for (std::size_t word = 0; word < hex.size() / 8; ++word) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      const char c = hex[word * 8 + i];
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (digit < 0) return false;
      value = value << 4 | static_cast<std::uint32_t>(digit);
    }
    std::memcpy(raw + word * 4, &value, 4);
  }
  if (hex.size() == 32) {
    out = ip_address::from_v6(raw);
  } else {
    out = ip_address{};
    std::memcpy(out.bytes.data(), raw, 4);
  }
  return true;
}

struct socket_inode {
  std::string inode;
  ip_address address;
};

// Listening sockets on `port` in one /proc/net/tcp* table whose address `wanted` accepts.
void listening_inodes(const char* table, std::uint16_t port,
                      const std::function<bool(const ip_address&)>& wanted, std::vector<socket_inode>& out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    const auto colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: TCP_LISTEN
    ip_address held;
    if (!parse_proc_address(local.substr(0, colon), held)) continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != port) continue;
    if (wanted(held)) out.push_back({inode, held});
  }
}

}  // namespace

std::vector<tcp_listener> tcp_listeners(std::uint16_t port,
                                        const std::function<bool(const ip_address&)>& wanted) {
  std::vector<socket_inode> inodes;
  listening_inodes("/proc/net/tcp", port, wanted, inodes);
  listening_inodes("/proc/net/tcp6", port, wanted, inodes);
  std::vector<tcp_listener> out;
  if (inodes.empty()) return out;  // no walk of every process for a free port
  // Processes come and go during the walk: the non-throwing increments end a folder's walk instead.
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator procs("/proc", ec), end; !ec && procs != end; procs.increment(ec)) {
    const fs::directory_entry& proc = *procs;
    const std::string name = proc.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code fd_ec;
    for (fs::directory_iterator fds(proc.path() / "fd", fd_ec); !fd_ec && fds != end; fds.increment(fd_ec)) {
      const fs::directory_entry& fd = *fds;
      std::error_code link_ec;
      const std::string target = fs::read_symlink(fd.path(), link_ec).string();
      if (!target.starts_with("socket:[")) continue;
      for (const socket_inode& s : inodes) {
        if (target != "socket:[" + s.inode + "]") continue;
        struct stat st {};
        ::stat(proc.path().c_str(), &st);
        out.push_back({s.address, static_cast<pid_t>(std::stol(name)), st.st_uid});
      }
    }
  }
  return out;
}

}  // namespace cproxy::platform
