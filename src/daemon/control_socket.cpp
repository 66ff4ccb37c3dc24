// Implementation of connect/daemon/control_socket.hpp.
#include "connect/daemon/control_socket.hpp"

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
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "connect/config/config_file.hpp"
#include "connect/config/json_text.hpp"
#include "connect/core/log.hpp"
#include "connect/platform/descriptor_passing.hpp"
#include "connect/platform/peer_credentials.hpp"

namespace cproxy::control {
namespace {

using clock = std::chrono::steady_clock;

constexpr int answer_timeout_ms = 5000;
// A client's whole request line, not one read: a client that trickles bytes is dropped.
constexpr std::chrono::milliseconds request_deadline{2000};
// Answers and what a client waits for after its request (the successor's confirmation of a handover).
constexpr std::chrono::milliseconds answer_deadline{answer_timeout_ms};
// Far above any status object (about 100 bytes a route; 60,000 routes are 6 MB) and any request.
constexpr std::size_t max_answer_bytes = 16 << 20;
constexpr std::size_t max_request_bytes = 64 << 10;
// Clients served at once; more wait in the backlog until one is done (each is, by its deadlines).
constexpr int max_clients = 16;

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
  // connect() on a Unix socket whose backlog is full waits this long at most.
  timeval tv{answer_timeout_ms / 1000, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits until `fd` is ready for `events` or `deadline` passes; false on the deadline or an error.
bool wait_ready(int fd, short events, clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// The whole line by `deadline`, the descriptor (if any) with its first bytes. Non-blocking calls and
// poll: the deadline holds for the whole line, not for each call; EINTR is retried (io_uring's task work
// interrupts blocking calls of a process that has a ring, with no signal to be seen).
bool send_line(int fd, const std::string& line, clock::time_point deadline, int pass_fd = -1) {
  const std::string text = line + "\n";
  std::size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n =
        platform::send_with_descriptor(fd, text.data() + sent, text.size() - sent, sent == 0 ? pass_fd : -1);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLOUT, deadline)) return false;
    } else if (!(n < 0 && errno == EINTR) || clock::now() >= deadline) {
      return false;
    }
  }
  return true;
}

// One line (up to `max_bytes`) by `deadline`, and a descriptor if one came with it.
std::optional<std::string> read_line(int fd, clock::time_point deadline, std::size_t max_bytes,
                                     int* received_fd = nullptr) {
  std::string line;
  std::vector<char> buf(64 * 1024);
  while (line.size() <= max_bytes) {
    const ssize_t n = platform::receive_with_descriptor(fd, buf.data(), buf.size(), received_fd);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLIN, deadline)) return std::nullopt;
      continue;
    }
    if (n < 0 && errno == EINTR && clock::now() < deadline) continue;  // see send_line()
    if (n <= 0) return std::nullopt;
    const std::size_t searched = line.size();
    line.append(buf.data(), static_cast<std::size_t>(n));
    if (const auto nl = line.find('\n', searched); nl != std::string::npos)
      return nl <= max_bytes ? std::optional<std::string>(line.substr(0, nl)) : std::nullopt;
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
  std::mutex m;
  std::condition_variable done;  // a client finished
  int clients = 0;               // serving now, each on its own thread
  bool released = false;         // the path is the successor's now
  bool stopping = false;         // the server's destructor runs
  std::mutex handing_over;       // one handover at a time

  void serve_one(int conn) {
    const std::optional<std::string> line =
        read_line(conn, clock::now() + request_deadline, max_request_bytes);
    if (!line) return;
    const std::string cmd = command_of(*line);
    const auto answer_by = clock::now() + answer_deadline;
    if (cmd == "status") {
      send_line(conn, h.status(), answer_by);
    } else if (cmd == "stop") {
      send_line(conn, R"({"ok":true})", answer_by);
      h.stop();
    } else if (cmd == "handover") {
      const std::unique_lock<std::mutex> one(handing_over, std::try_to_lock);
      if (!one.owns_lock()) {
        send_line(conn, R"({"error":"another handover is under way"})", answer_by);
        return;
      }
      const std::string answer_line = handover_answer(h.hub ? h.hub() : hub_handover{});
      if (!send_line(conn, answer_line, answer_by, h.listen_fd)) {
        log::warn("a --replace successor asked for the listening socket; sending it failed: ",
                  std::strerror(errno), "; still serving");
        return;
      }
      // The successor confirms once it accepts (or hangs up if it failed): only a confirmation drains us.
      const std::optional<std::string> answer =
          read_line(conn, clock::now() + answer_deadline, max_request_bytes);
      if (answer && command_of(*answer) == "accepting") {
        log::info("handed the listening socket to a successor (--replace); draining");
        release_path();  // the successor binds proxy.sock next
        if (h.handed_over) h.handed_over();
        h.stop();
      } else {
        log::warn("a --replace successor did not take over; still serving");
      }
    } else {
      send_line(conn, R"({"error":"unknown command"})", answer_by);
    }
  }

  // Unlinks the socket file if it is still ours; the listening socket itself closes with this server.
  void release_path() {
    const std::lock_guard<std::mutex> lock(m);
    if (released) return;
    released = true;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
  }

  void run() {
    while (true) {
      {
        // At the cap, new clients wait in the backlog: every client ends by its deadlines.
        std::unique_lock<std::mutex> lock(m);
        done.wait(lock, [this] { return clients < max_clients || stopping; });
        if (stopping) return;
      }
      pollfd fds[2] = {{listen, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      const int conn = ::accept4(listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      {
        const std::lock_guard<std::mutex> lock(m);
        ++clients;
      }
      // A thread per client: one slow client never holds the others (status, stop) back.
      try {
        std::thread([this, conn] {
          serve_one(conn);
          ::close(conn);
          const std::lock_guard<std::mutex> lock(m);
          --clients;
          done.notify_all();
        }).detach();
      } catch (const std::system_error& e) {
        log::warn("proxy.sock: cannot start a thread for a client: ", e.what());
        ::close(conn);
        const std::lock_guard<std::mutex> lock(m);
        --clients;
      }
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
  if (!bound || ::listen(state_->listen, 64) != 0 || ::pipe2(state_->wake, O_CLOEXEC) != 0) {
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
    {
      const std::lock_guard<std::mutex> lock(state_->m);
      state_->stopping = true;
      state_->done.notify_all();
    }
    const char one = 1;
    const ssize_t ignored = ::write(state_->wake[1], &one, 1);
    (void)ignored;
    state_->thread.join();
    // The clients' threads use the handlers, whose objects the caller destroys next.
    std::unique_lock<std::mutex> lock(state_->m);
    state_->done.wait(lock, [s = state_.get()] { return s->clients == 0; });
  }
  // Only our own socket file: a successor may have bound a new one at the same path.
  if (state_->listen >= 0) {
    state_->release_path();
    ::close(state_->listen);
  }
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
  if (send_line(conn, R"({"cmd":"handover"})", clock::now() + answer_deadline))
    answer = read_line(conn, clock::now() + answer_deadline, max_handover_answer_bytes, &fd);
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
  send_line(conn_, R"({"cmd":"accepting"})", clock::now() + answer_deadline);
  ::close(conn_);
  conn_ = -1;
}

std::optional<std::string> control_request(const std::string& path, const std::string& line,
                                           control_peer* peer) {
  const int conn = connect_to(path);
  if (conn < 0) return std::nullopt;
  if (peer) {
    const std::optional<platform::peer_credentials> cred = platform::unix_peer(conn);
    if (!cred) {
      ::close(conn);
      return std::nullopt;
    }
    *peer = control_peer{cred->pid, cred->uid};
  }
  std::optional<std::string> answer;
  if (send_line(conn, line, clock::now() + answer_deadline))
    answer = read_line(conn, clock::now() + answer_deadline, max_answer_bytes);
  ::close(conn);
  return answer;
}

}  // namespace cproxy::control
