// Implementation of connect/control/control_socket.hpp.
#include "connect/control/control_socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "connect/control/config_file.hpp"
#include "connect/core/log.hpp"
#include "json_text.hpp"

namespace cproxy::control {
namespace {

constexpr int answer_timeout_ms = 5000;

bool make_address(const std::string& path, sockaddr_un& addr) {
  if (path.size() >= sizeof addr.sun_path) return false;
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

int connect_to(const std::string& path) {
  sockaddr_un addr;
  if (!make_address(path, addr)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{answer_timeout_ms / 1000, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The whole line, the descriptor (if any) with its first bytes. EINTR is retried: with SO_SNDTIMEO set,
// the kernel does not restart an interrupted send, and io_uring's task work interrupts blocking calls of
// a process that has a ring (the uring backend), with no signal to be seen.
bool send_line(int fd, const std::string& line, int pass_fd = -1) {
  const std::string text = line + "\n";
  std::size_t sent = 0;
  for (int attempts = 0; attempts < 4096 && sent < text.size(); ++attempts) {
    iovec iov{const_cast<char*>(text.data() + sent), text.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && sent == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return sent == text.size();
}

// One line (up to `max_bytes`), and a descriptor if one came with it.
std::optional<std::string> read_line(int fd, int* received_fd = nullptr, std::size_t max_bytes = 65536) {
  std::string line;
  for (int reads = 0; reads < 4096 && line.size() < max_bytes; ++reads) {
    char buf[4096];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;  // see send_line()
    if (n <= 0) return std::nullopt;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c), sizeof(int));
        if (received_fd && *received_fd < 0) {
          *received_fd = got;
        } else {
          ::close(got);
        }
      }
    }
    line.append(buf, static_cast<std::size_t>(n));
    if (const auto nl = line.find('\n'); nl != std::string::npos && nl < max_bytes) return line.substr(0, nl);
  }
  return std::nullopt;
}

bool is_numeric_host(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

std::string command_of(const std::string& line) {
  boost::json::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return {};
  const boost::json::value* cmd = v.as_object().if_contains("cmd");
  return cmd && cmd->is_string() ? std::string(cmd->as_string()) : std::string();
}

}  // namespace

std::string control_socket_path(const std::string& home) {
  return home + "/proxy.sock";
}

std::string handover_answer(const hub_handover& hub) {
  boost::json::array routes;
  for (const route::route& r : hub.routes) {
    if (routes.size() == max_handover_routes) {
      log::warn("--replace: handing over the first ", max_handover_routes, " of ", hub.routes.size(),
                " hub routes");
      break;
    }
    routes.push_back(boost::json::object{{"name", r.name}, {"host", r.host}, {"port", r.port}});
  }
  boost::json::object answer{
      {"ok", true}, {"hub", boost::json::object{{"url", hub.hub_url}, {"routes", std::move(routes)}}}};
  return boost::json::serialize(answer);
}

std::optional<hub_handover> parse_handover_answer(std::string_view line, std::string& error) {
  std::string problem;
  const std::optional<boost::json::value> doc = json_text::parse_json(line, problem);
  if (!doc) {
    error = "the handover answer is not JSON: " + problem;
    return std::nullopt;
  }
  const boost::json::object* o = doc->if_object();
  const boost::json::value* ok = o ? o->if_contains("ok") : nullptr;
  if (!ok || !ok->is_bool() || !ok->get_bool()) {
    error = "the handover answer is not {\"ok\":true,...}: " + json_text::shown(*doc);
    return std::nullopt;
  }
  hub_handover out;
  const boost::json::value* hub = o->if_contains("hub");
  if (!hub) return out;  // a predecessor that passes no routes: this one's own poll fills them
  const boost::json::object* h = hub->if_object();
  const boost::json::value* url = h ? h->if_contains("url") : nullptr;
  const boost::json::value* routes = h ? h->if_contains("routes") : nullptr;
  if (!url || !url->is_string() || !routes || !routes->is_array() ||
      routes->get_array().size() > max_handover_routes) {
    error = "the handover answer's \"hub\" must be {\"url\": string, \"routes\": array of at most " +
            std::to_string(max_handover_routes) + "}, not " + json_text::shown(*hub);
    return std::nullopt;
  }
  out.hub_url = std::string(url->get_string());
  for (const boost::json::value& item : routes->get_array()) {
    const boost::json::object* r = item.if_object();
    const boost::json::value* name = r ? r->if_contains("name") : nullptr;
    const boost::json::value* host = r ? r->if_contains("host") : nullptr;
    const boost::json::value* port = r ? r->if_contains("port") : nullptr;
    long long n = 0;  // a plain number, not an optional: GCC 12 warns falsely about optional<long long> here
    if (port)
      if (const std::optional<long long> whole = json_text::whole_number(*port)) n = *whole;
    if (!name || !name->is_string() || !is_route_name(name->get_string(), true) || !host ||
        !host->is_string() ||
        !(host->get_string() == "localhost" || is_numeric_host(std::string(host->get_string()))) || n < 1 ||
        n > 65535) {
      error = "the handover answer holds a hub route that is not {\"name\", \"host\", \"port\"}: " +
              json_text::shown(item);
      return std::nullopt;
    }
    out.routes.push_back(route::route{json_text::lower(name->get_string()), std::string(host->get_string()),
                                      static_cast<std::uint16_t>(n), route::source::hub});
  }
  return out;
}

struct control_server::state {
  std::string path;
  handlers h;
  int listen = -1;
  int wake[2] = {-1, -1};
  ino_t inode = 0;
  std::thread thread;

  void serve_one(int conn) {
    const std::optional<std::string> line = read_line(conn);
    if (!line) return;
    const std::string cmd = command_of(*line);
    if (cmd == "status") {
      send_line(conn, h.status());
    } else if (cmd == "stop") {
      send_line(conn, R"({"ok":true})");
      h.stop();
    } else if (cmd == "handover") {
      const std::string answer_line = handover_answer(h.hub ? h.hub() : hub_handover{});
      if (!send_line(conn, answer_line, h.listen_fd)) {
        log::warn("a --replace successor asked for the listening socket; sending it failed: ",
                  std::strerror(errno), "; still serving");
        return;
      }
      // The successor confirms once it accepts (or hangs up if it failed): only a confirmation drains us.
      const std::optional<std::string> answer = read_line(conn);
      if (answer && command_of(*answer) == "accepting") {
        log::info("handed the listening socket to a successor (--replace); draining");
        release_path();  // the successor binds proxy.sock next
        if (h.handed_over) h.handed_over();
        h.stop();
      } else {
        log::warn("a --replace successor did not take over; still serving");
      }
    } else {
      send_line(conn, R"({"error":"unknown command"})");
    }
  }

  void release_path() {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
    ::close(listen);
    listen = -1;
  }

  void run() {
    while (listen >= 0) {
      pollfd fds[2] = {{listen, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      const int conn = ::accept4(listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      timeval tv{answer_timeout_ms / 1000, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      serve_one(conn);
      ::close(conn);
    }
  }
};

control_server::control_server(std::string path, handlers h, std::string& error)
    : state_(std::make_unique<state>()) {
  state_->path = std::move(path);
  state_->h = std::move(h);
  sockaddr_un addr;
  if (!make_address(state_->path, addr)) {
    error = state_->path + ": path too long for a Unix socket";
    return;
  }
  // A socket file nobody answers on is stale (a proxy that was killed): replace it. A live one is not ours.
  if (const int probe = connect_to(state_->path); probe >= 0) {
    ::close(probe);
    error = state_->path + " belongs to another running proxy";
    return;
  }
  ::unlink(state_->path.c_str());
  state_->listen = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const mode_t old_mask = ::umask(0177);  // 0600 from the start: no window where others could connect
  const bool bound =
      state_->listen >= 0 && ::bind(state_->listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::umask(old_mask);
  if (!bound || ::listen(state_->listen, 16) != 0 || ::pipe2(state_->wake, O_CLOEXEC) != 0) {
    error = state_->path + ": " + std::strerror(errno);
    if (state_->listen >= 0) ::close(state_->listen);
    state_->listen = -1;
    return;
  }
  struct stat st {};
  if (::stat(state_->path.c_str(), &st) == 0) state_->inode = st.st_ino;
  state* s = state_.get();
  state_->thread = std::thread([s] { s->run(); });
}

control_server::~control_server() {
  if (state_->thread.joinable()) {
    const char one = 1;
    const ssize_t ignored = ::write(state_->wake[1], &one, 1);
    (void)ignored;
    state_->thread.join();
  }
  // Only our own socket file: a successor may have bound a new one at the same path.
  if (state_->listen >= 0) state_->release_path();
  for (const int fd : state_->wake)
    if (fd >= 0) ::close(fd);
}

std::optional<handover> handover::request(const std::string& path, std::string& error) {
  const int conn = connect_to(path);
  if (conn < 0) {
    error = "the running proxy does not answer on " + path;
    return std::nullopt;
  }
  int fd = -1;
  std::optional<std::string> answer;
  if (send_line(conn, R"({"cmd":"handover"})")) answer = read_line(conn, &fd, max_handover_answer_bytes);
  if (!answer || fd < 0) {
    ::close(conn);
    if (fd >= 0) ::close(fd);
    error = "the running proxy did not hand over its listening socket";
    return std::nullopt;
  }
  // A socket without its routes would answer 404 where the predecessor routed: refuse it rather.
  std::optional<hub_handover> hub = parse_handover_answer(*answer, error);
  if (!hub) {
    ::close(conn);
    ::close(fd);
    return std::nullopt;
  }
  return handover(conn, fd, std::move(*hub));
}

handover::handover(handover&& o) noexcept
    : conn_(std::exchange(o.conn_, -1)), fd_(std::exchange(o.fd_, -1)), hub_(std::move(o.hub_)) {}

handover& handover::operator=(handover&& o) noexcept {
  if (this != &o) {
    if (conn_ >= 0) ::close(conn_);
    conn_ = std::exchange(o.conn_, -1);
    fd_ = std::exchange(o.fd_, -1);
    hub_ = std::move(o.hub_);
  }
  return *this;
}

handover::~handover() {
  if (conn_ >= 0) ::close(conn_);
}

void handover::confirm() {
  if (conn_ < 0) return;
  send_line(conn_, R"({"cmd":"accepting"})");
  ::close(conn_);
  conn_ = -1;
}

std::optional<std::string> control_request(const std::string& path, const std::string& line) {
  const int conn = connect_to(path);
  if (conn < 0) return std::nullopt;
  std::optional<std::string> answer;
  if (send_line(conn, line)) answer = read_line(conn);
  ::close(conn);
  return answer;
}

}  // namespace cproxy::control
