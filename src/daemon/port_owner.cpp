// Implementation of connect/daemon/port_owner.hpp (Linux /proc).
#include "connect/daemon/port_owner.hpp"

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cproxy::control {
namespace {

// An address as bind() conflicts see it: an IPv4-mapped IPv6 address ([::ffff:127.0.0.1]) is the IPv4
// address it maps.
struct address {
  bool v4 = true;
  std::array<unsigned char, 16> bytes{};  // IPv4: the first 4

  bool unspecified() const {
    const std::size_t n = v4 ? 4 : 16;
    for (std::size_t i = 0; i < n; ++i)
      if (bytes[i] != 0) return false;
    return true;
  }
  bool operator==(const address&) const = default;
};

address from_v6(const unsigned char* b) {
  static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  address a;
  if (std::memcmp(b, mapped, 12) == 0) {
    std::memcpy(a.bytes.data(), b + 12, 4);
  } else {
    a.v4 = false;
    std::memcpy(a.bytes.data(), b, 16);
  }
  return a;
}

address from_endpoint(const io::endpoint& e) {
  if (e.family() == AF_INET6)
    return from_v6(reinterpret_cast<const sockaddr_in6*>(e.data())->sin6_addr.s6_addr);
  address a;
  std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(e.data())->sin_addr, 4);
  return a;
}

// The kernel prints each 32-bit word of the address as the hex of its value in host byte order
// ("0100007F" is 127.0.0.1 on x86): reading the hex back into a word and copying its bytes undoes that
// on any byte order.
bool parse_proc_address(const std::string& hex, address& out) {
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
    out = from_v6(raw);
  } else {
    out = address{};
    std::memcpy(out.bytes.data(), raw, 4);
  }
  return true;
}

// How surely a listener at `held` stops a bind of `want` (same port). The proxy's IPv6 sockets set
// IPV6_V6ONLY, so an IPv6 `want` never meets an IPv4 listener. An IPv4 `want` meets a [::] listener
// only when that one is dual-stack (IPV6_V6ONLY=0, Node's default), which /proc does not show: such a
// listener is only a `possible` holder, named when no `certain` one exists.
enum class conflict { none, possible, certain };

conflict conflicts(const address& want, const address& held) {
  if (want.v4 == held.v4) {
    if (want == held || want.unspecified() || held.unspecified()) return conflict::certain;
    return conflict::none;
  }
  if (want.v4 && !held.v4 && held.unspecified()) return conflict::possible;
  return conflict::none;
}

struct candidate {
  std::string inode;
  conflict how;
};

// Listening sockets on `port` in one /proc/net/tcp* table that conflict with `want`.
void listening_inodes(const char* table, std::uint16_t port, const address& want,
                      std::vector<candidate>& out) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    const auto colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: TCP_LISTEN
    address held;
    if (!parse_proc_address(local.substr(0, colon), held)) continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != port) continue;
    if (const conflict how = conflicts(want, held); how != conflict::none) out.push_back({inode, how});
  }
}

// The process holding one of `wanted`'s socket inodes, a `certain` one before a `possible` one.
std::optional<port_owner> holder(const std::vector<candidate>& wanted) {
  std::optional<port_owner> possible;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", ec)) {
      const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (!target.starts_with("socket:[")) continue;
      for (const candidate& c : wanted) {
        if (target != "socket:[" + c.inode + "]") continue;
        struct stat st {};
        ::stat(proc.path().c_str(), &st);
        const port_owner owner{static_cast<pid_t>(std::stol(name)), st.st_uid};
        if (c.how == conflict::certain) return owner;
        if (!possible) possible = owner;
      }
    }
  }
  return possible;
}

}  // namespace

std::optional<port_owner> find_listener(const io::endpoint& want) {
  const address wanted = from_endpoint(want);
  std::vector<candidate> inodes;
  listening_inodes("/proc/net/tcp", want.port(), wanted, inodes);
  listening_inodes("/proc/net/tcp6", want.port(), wanted, inodes);
  if (inodes.empty()) return std::nullopt;
  return holder(inodes);
}

}  // namespace cproxy::control
