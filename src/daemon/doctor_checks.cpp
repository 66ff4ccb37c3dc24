// The checks of connect/daemon/doctor_command.hpp, one function each. Probes touch loopback only: a TCP
// connect with a one-second deadline, one HTTP request to the proxy's own page, getaddrinfo.
#include "doctor_checks.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "connect/config/active_routes.hpp"
#include "connect/config/config_file.hpp"
#include "connect/daemon/hosts_block.hpp"
#include "connect/daemon/port_owner.hpp"
#include "connect/io/endpoint.hpp"
#include "connect/io/select_backend.hpp"
#include "connect/pki/trust_store.hpp"
#include "connect/tls/certificate.hpp"

namespace cproxy::control::doctor {
namespace {

constexpr int probe_timeout_ms = 1000;

// Connects to `ep` within the deadline: "" when it accepted, else the reason. The socket is returned
// through `fd_out` when given (the caller sends on it), else closed.
std::string try_connect(const io::endpoint& ep, int* fd_out = nullptr) {
  const int fd = ::socket(ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  std::string reason;
  if (::connect(fd, ep.data(), ep.size()) != 0) {
    if (errno != EINPROGRESS) {
      reason = std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, probe_timeout_ms);
      int error = 0;
      socklen_t error_len = sizeof error;
      if (ready == 0) {
        reason = "no answer within 1 s";
      } else if (ready < 0) {
        reason = std::strerror(errno);
      } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0 || error != 0) {
        reason = std::strerror(error ? error : errno);
      }
    }
  }
  if (reason.empty() && fd_out) {
    *fd_out = fd;
  } else {
    ::close(fd);
  }
  return reason;
}

bool is_loopback(const std::string& host) {
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  return ::inet_pton(AF_INET6, host.c_str(), &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

// The proxy's own page answers with an HTTP status line: "" when it did, else the reason.
std::string ask_own_page(const io::endpoint& ep) {
  int fd = -1;
  if (std::string reason = try_connect(ep, &fd); !reason.empty()) return reason;
  const std::string request =
      "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2 * probe_timeout_ms);
  std::size_t sent = 0;
  while (answer.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, probe_timeout_ms) <= 0) break;
    if (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
      continue;
    }
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer.starts_with("HTTP/") ? "" : "no HTTP answer";
}

std::string date_of(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &tm);
  return text;
}

// "  [x] TEXT — FIX" as trust_store.cpp prints it, read back into a finding.
finding from_store_line(bool ok, std::string line) {
  finding f{"trust", ok ? level::ok : level::fail, {}, {}};
  while (line.starts_with(" ")) line.erase(0, 1);
  for (const auto& [mark, what] :
       {std::pair{"[ok] ", level::ok}, {"[!] ", level::warn}, {"[x] ", level::fail}}) {
    if (line.starts_with(mark)) {
      line.erase(0, std::strlen(mark));
      if (!ok) f.what = what == level::ok ? level::fail : what;
    }
  }
  if (const std::size_t dash = line.find(" — "); dash != std::string::npos) {
    f.fix = line.substr(dash + std::strlen(" — "));
    line.erase(dash);
  }
  f.message = std::move(line);
  if (f.what == level::fail && f.fix.empty()) f.fix = "run: connect proxy trust";
  return f;
}

}  // namespace

finding check_proxy(const facts& f) {
  if (f.silent)
    return {"proxy", level::fail,
            "Proxy (PID " + std::to_string(f.silent->pid) + ") holds port " + std::to_string(f.port) +
                " but does not answer on proxy.sock",
            "run: connect proxy start --replace"};
  if (!f.running) return {"proxy", level::warn, "Proxy is not running", "run: connect proxy start"};
  const std::string pid = std::to_string(f.running->pid);
  const std::string port = std::to_string(f.port);
  if (const std::string reason = ask_own_page(local_endpoint(f.bind, f.port)); !reason.empty())
    return {"proxy", level::fail,
            "Proxy (PID " + pid + ") does not answer on port " + port + " (" + reason + ")",
            "run: connect proxy start --replace"};
  return {"proxy", level::ok, "Proxy running (PID " + pid + "), answering on port " + port, ""};
}

std::vector<finding> check_upstreams(const facts& f) {
  std::vector<finding> out;
  if (f.routes.empty())
    out.push_back(
        {"upstream", level::warn, "No routes yet",
         "add one with: connect reach <service>, or \"routes\" in " + f.shown_home + "/config.json"});
  for (const route::route& r : f.routes) {
    const std::string port = std::to_string(r.port);
    std::vector<io::endpoint> tries;
    if (r.host == "localhost") {
      tries = {io::endpoint::loopback_v4(r.port), io::endpoint::loopback_v6(r.port)};
    } else if (is_loopback(r.host)) {
      if (const auto ep = io::endpoint::from(r.host, r.port)) tries.push_back(*ep);
    }
    if (tries.empty()) {
      out.push_back({"upstream", level::warn,
                     r.name + " → " + r.upstream_text() + " not checked (not this machine)", ""});
      continue;
    }
    std::string first_reason;
    std::optional<io::endpoint> answered;
    for (const io::endpoint& ep : tries) {
      const std::string reason = try_connect(ep);
      if (reason.empty()) {
        answered = ep;
        break;
      }
      if (first_reason.empty()) first_reason = reason;
    }
    if (answered) {
      out.push_back(
          {"upstream", level::ok, r.name + " → " + answered->to_string() + " accepts connections", ""});
    } else {
      out.push_back(
          {"upstream", level::fail,
           r.name + " → " + r.upstream_text() + " does not accept connections (" + first_reason + ")",
           "start the service on port " + port});
    }
  }
  // Entries of active-routes.json whose process has exited: not routed, and a likely surprise.
  const std::string file = f.home + "/active-routes.json";
  std::string text;
  if (read_small_file(file, text, max_route_file_bytes, links::refuse) == 0) {
    const auto all = parse_active_routes(text, [](int) { return true; });
    for (const route::route& r : all.routes) {
      bool routed = false;
      for (const route::route& live : f.routes) routed = routed || live.name == r.name;
      if (!routed)
        out.push_back({"upstream", level::warn,
                       r.name + ": its process in active-routes.json has exited; not routed",
                       "start " + r.name + " again"});
    }
  }
  return out;
}

std::vector<finding> check_names(const facts& f) {
  std::vector<finding> out;
  std::vector<std::string> names;
  for (const route::route& r : f.routes) names.push_back(r.name);
  for (const std::string& line : hosts_block_lines(names, f.domains)) {
    const std::string name = line.substr(line.find(' ') + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
      out.push_back({"resolve", level::fail, name + " does not resolve (" + ::gai_strerror(rc) + ")",
                     "run: connect proxy hosts"});
      continue;
    }
    std::string loopback, other;
    for (const addrinfo* a = found; a; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* where =
          a->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr);
      ::inet_ntop(a->ai_family, where, text, sizeof text);
      if (is_loopback(text)) {
        if (loopback.empty()) loopback = text;
      } else if (other.empty()) {
        other = text;
      }
    }
    ::freeaddrinfo(found);
    if (!loopback.empty()) {
      out.push_back({"resolve", level::ok, name + " resolves to " + loopback, ""});
    } else {
      out.push_back({"resolve", level::fail, name + " resolves to " + other + ", not to this machine",
                     "run: connect proxy hosts"});
    }
  }
  return out;
}

std::vector<finding> check_ca_and_trust(const facts& f) {
  const ca_check ca = check_ca(f.home);
  const std::string path = f.shown_home + "/certs/ca.crt";
  if (!ca.present) return {{"ca", level::ok, "No local CA yet (made by the first HTTPS start)", ""}};
  if (!ca.problem.empty())
    return {{"ca", level::fail, "Local CA " + path + " is unusable (" + ca.problem + ")",
             "run: connect proxy trust"}};
  std::vector<finding> out;
  const auto now = std::chrono::system_clock::now();
  const auto days = std::chrono::floor<std::chrono::days>(ca.not_after - now).count();
  const std::string date = date_of(ca.not_after);
  if (ca.not_after <= now) {
    out.push_back(
        {"ca", level::fail, "Local CA " + path + " expired on " + date, "run: connect proxy trust"});
  } else if (ca.not_after - now < tls::renew_before) {
    out.push_back({"ca", level::warn,
                   "Local CA " + path + " expires on " + date + " (in " + std::to_string(days) + " days)",
                   "run: connect proxy trust (it makes a new one)"});
  } else {
    out.push_back({"ca", level::ok,
                   "Local CA " + path + " expires on " + date + " (in " + std::to_string(days) + " days)",
                   ""});
  }
  for (const auto& [ok, line] : ca.stores) out.push_back(from_store_line(ok, line));
  return out;
}

finding check_io(const facts& f) {
  const std::string probe = io::probe_uring();
  const std::string why_not = probe.empty() ? "" : "io_uring is not usable here: " + probe;
  std::string kind;
  if (f.running) {
    kind = f.running->io.empty() ? std::string("unknown") : f.running->io;
    std::string why = kind == "uring"    ? "io_uring works here"
                      : !why_not.empty() ? why_not
                                         : "started with --io asio or CONNECT_PROXY_IO=asio";
    return {"io", level::ok, "I/O backend: " + kind + " (" + why + ")", ""};
  }
  std::string error;
  const auto decision = io::decide_backend(f.io, error);
  if (!decision)
    return {"io", level::fail, "I/O backend: uring was asked for, but " + error, "use --io auto"};
  kind = std::string(io::to_string(decision->kind));
  const std::string why = kind == "uring"    ? "io_uring works here"
                          : !why_not.empty() ? why_not
                                             : "asked for with --io asio or CONNECT_PROXY_IO";
  return {"io", level::ok, "I/O backend at the next start: " + kind + " (" + why + ")", ""};
}

finding check_port(const facts& f) {
  const std::string port = std::to_string(f.port);
  const auto ep = io::endpoint::from(f.bind.empty() ? "127.0.0.1" : f.bind, f.port);
  const std::optional<port_owner> owner = ep ? find_listener(*ep) : std::nullopt;
  if (f.running) {
    const std::string pid = std::to_string(f.running->pid);
    if (owner && owner->pid == f.running->pid)
      return {"port", level::ok, "Port " + port + " is held by this proxy (PID " + pid + ")", ""};
    if (owner && owner->pid > 0)
      return {"port", level::fail,
              "Port " + port + " is held by PID " + std::to_string(owner->pid) + ", not by the proxy (PID " +
                  pid + ")",
              "run: connect proxy start --replace"};
    return {"port", level::warn, "Port " + port + ": the listener could not be identified", ""};
  }
  if (!owner) return {"port", level::ok, "Port " + port + " is free", ""};
  if (f.silent && owner->pid == f.silent->pid)  // the proxy line above says it fails, and its fix
    return {"port", level::warn,
            "Port " + port + " is held by the proxy (PID " + std::to_string(owner->pid) +
                "), which does not answer",
            ""};
  const std::string who =
      owner->pid > 0 ? "another program (PID " + std::to_string(owner->pid) + ")" : "another program";
  return {
      "port", level::fail, "Port " + port + " is held by " + who,
      "run: connect proxy start --port " + std::to_string(f.port + 1) + ", or add --replace to take it over"};
}

}  // namespace cproxy::control::doctor
