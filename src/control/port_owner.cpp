// Implementation of connect/control/port_owner.hpp (Linux /proc).
#include "connect/control/port_owner.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cproxy::control {
namespace {

// Inodes of sockets listening on `port` in one /proc/net/tcp* table.
void listening_inodes(const char* table, std::uint16_t port, std::vector<std::string>& out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  for (int rows = 0; rows < 1'000'000 && std::getline(in, line); ++rows) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    const auto colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: TCP_LISTEN
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) out.push_back(inode);
  }
}

}  // namespace

std::optional<port_owner> find_listener(std::uint16_t port) {
  std::vector<std::string> inodes;
  listening_inodes("/proc/net/tcp", port, inodes);
  listening_inodes("/proc/net/tcp6", port, inodes);
  if (inodes.empty()) return std::nullopt;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", ec)) {
      const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
      for (const std::string& inode : inodes) {
        if (target == "socket:[" + inode + "]") {
          struct stat st {};
          ::stat(proc.path().c_str(), &st);
          return port_owner{static_cast<pid_t>(std::stol(name)), st.st_uid};
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace cproxy::control
