// --replace under continuous load with routes that are not in --config: from active-routes.json, and from
// a fake hub on loopback. Five takeovers in a row per case, on both io backends, while client threads
// send requests on fresh connections and on keep-alive ones: not one may fail or get another answer than
// the 200 the old proxy gave (the contract's "Daemon and CLI", --replace), and each new pid must answer.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "proxy_home.hpp"
#include "support/built_backends.hpp"
#include "support/posix_server.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
namespace bdata = boost::unit_test::data;

namespace {

const auto& backends = cproxy::test::built_backends;
constexpr int takeovers = 5;

// The upstream every route points at: one thread, non-blocking sockets, any number of requests per
// connection; answers each request head with a 200. Requests have no bodies here.
class keep_alive_upstream {
 public:
  keep_alive_upstream() {
    const cproxy::test::posix_listener l = cproxy::test::posix_listen_loopback(1024);
    listen_fd_ = l.fd;
    port_ = l.port;
    ::fcntl(listen_fd_, F_SETFL, O_NONBLOCK);
    thread_ = std::thread([this] { run(); });
  }
  ~keep_alive_upstream() {
    stop_ = true;
    thread_.join();
    for (const conn& c : conns_) ::close(c.fd);
    ::close(listen_fd_);
  }
  keep_alive_upstream(const keep_alive_upstream&) = delete;
  keep_alive_upstream& operator=(const keep_alive_upstream&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  struct conn {
    int fd;
    std::string in, out;
  };

  void run() {
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.assign({{listen_fd_, POLLIN, 0}});
      for (const conn& c : conns_)
        fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      std::vector<conn> kept;
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        conn& c = conns_[i];
        if (fds[i + 1].revents && !serve(c)) {
          ::close(c.fd);
        } else {
          kept.push_back(std::move(c));
        }
      }
      conns_ = std::move(kept);
      if (fds[0].revents & POLLIN) {
        for (int accepted = 0; accepted < 64; ++accepted) {
          const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          if (conns_.size() >= 4096) {
            ::close(fd);  // bounded: a proxy that leaks upstream connections fails the test instead
          } else {
            conns_.push_back({fd, {}, {}});
          }
        }
      }
    }
  }

  // False when the connection is done (peer closed, error).
  static bool serve(conn& c) {
    char buf[4096];
    for (int reads = 0; reads < 16; ++reads) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n == 0) return false;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
    }
    for (auto end = c.in.find("\r\n\r\n"); end != std::string::npos; end = c.in.find("\r\n\r\n")) {
      c.in.erase(0, end + 4);
      c.out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    }
    if (c.in.size() > 65536) return false;
    if (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
    }
    return true;
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<conn> conns_;  // the server thread's
  std::thread thread_;
};

// GET /v1/services, as a hub far away answers it: the first answer at once (the first proxy's start),
// every later one `delay` later, and from the `fail_from`th request on a 500 (the hub goes down). A
// successor that waits for its own hub answer before routing hub names fails the test either way.
class slow_hub {
 public:
  slow_hub(std::string services, std::chrono::milliseconds delay, std::size_t fail_from)
      : services_(std::move(services)), delay_(delay), fail_from_(fail_from) {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  std::size_t requests() const { return requests_; }

 private:
  std::string respond(const std::string& request) {
    const std::size_t n = ++requests_;
    if (n > 1) std::this_thread::sleep_for(delay_);
    if (request.find("\r\nx-api-key: hub-key\r\n") == std::string::npos)
      return "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    if (n >= fail_from_) return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(services_.size()) + "\r\n\r\n" + services_;
  }

  std::string services_;
  std::chrono::milliseconds delay_;
  std::size_t fail_from_;
  std::atomic<std::size_t> requests_{0};
  // Last: its thread, which calls respond(), stops before the members above go.
  cproxy::test::request_head_server server_{[this](const std::string& request) { return respond(request); }};
};

// What one kind of client saw. `reconnected`: a keep-alive connection the proxy closed between two
// requests (an idle connection of a draining proxy, RFC 9112 9.3.1) before a byte of the answer; the
// request went again on a new connection, as clients do for GET.
struct load_stats {
  std::atomic<long> ok{0}, non_2xx{0}, errors{0}, reconnected{0};
  std::mutex mutex;
  std::string first_failure;

  void failed(std::atomic<long>& counter, const std::string& what) {
    if (counter++ == 0) {
      std::lock_guard lock(mutex);
      if (first_failure.empty()) first_failure = what;
    }
  }
  void answered(const std::string& response) {
    if (response.starts_with("HTTP/1.1 2")) {
      ++ok;
    } else if (response.starts_with("HTTP/1.1 ")) {
      failed(non_2xx, response.substr(0, std::min<std::size_t>(response.size(), 300)));
    } else {
      failed(errors, response.empty() ? "(no response)" : response.substr(0, 100));
    }
  }
  std::string summary() {
    std::lock_guard lock(mutex);
    return std::to_string(ok) + " ok, " + std::to_string(non_2xx) + " non-2xx, " + std::to_string(errors) +
           " errors, " + std::to_string(reconnected) +
           " reconnected; first failure: " + (first_failure.empty() ? "none" : first_failure);
  }
};

int connect_loopback(unsigned port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// One request on a kept connection and its whole response (head and Content-Length body), or what came
// before the connection ended. `closes` tells whether the connection ends after it.
std::string exchange(int fd, const std::string& request, bool& closes) {
  closes = true;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return {};
  std::string got;
  char buf[4096];
  std::size_t head_end = std::string::npos;
  for (int reads = 0; reads < 1000 && (head_end = got.find("\r\n\r\n")) == std::string::npos; ++reads) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, static_cast<std::size_t>(n));
  }
  if (head_end == std::string::npos) return got;
  const std::string head = lowered(got.substr(0, head_end + 2));
  const auto length_at = head.find("\r\ncontent-length:");
  if (length_at == std::string::npos) return got;  // not framed as this test expects: the caller closes
  const std::size_t length = std::stoul(head.substr(length_at + 17));
  for (int reads = 0; reads < 1000 && got.size() < head_end + 4 + length; ++reads) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, static_cast<std::size_t>(n));
  }
  closes = got.size() != head_end + 4 + length || head.find("\r\nconnection: close\r\n") != std::string::npos;
  return got;
}

// Client threads until `stop` (and at most a bounded count each): `fresh` threads open a connection per
// request; `kept` threads send request after request on one connection, opening a new one only when the
// proxy closes it.
class load {
 public:
  load(unsigned port, int fresh, int kept) {
    const std::string host = "Host: api.localhost:" + std::to_string(port) + "\r\n";
    for (int i = 0; i < fresh; ++i)
      threads_.emplace_back([this, port, host] {
        const std::string request = "GET /fresh HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n";
        for (int n = 0; n < 1'000'000 && !stop_; ++n)
          fresh_.answered(cproxy::test::http_request(port, request, 5s));
      });
    for (int i = 0; i < kept; ++i)
      threads_.emplace_back([this, port, host] {
        const std::string request = "GET /kept HTTP/1.1\r\n" + host + "\r\n";
        int fd = -1;
        int used = 0;  // requests answered on `fd`
        for (int n = 0; n < 10'000'000 && !stop_; ++n) {
          if (fd < 0) {
            fd = connect_loopback(port);
            used = 0;
            if (fd < 0) {
              kept_.failed(kept_.errors, "connect failed");
              continue;
            }
          }
          bool closes = true;
          std::string response = exchange(fd, request, closes);
          if (response.empty() && used > 0) {
            ++kept_.reconnected;
            ::close(fd);
            fd = connect_loopback(port);
            used = 0;
            if (fd >= 0) response = exchange(fd, request, closes);
          }
          kept_.answered(response);
          ++used;
          if (closes && fd >= 0) {
            ::close(fd);
            fd = -1;
          }
        }
        if (fd >= 0) ::close(fd);
      });
  }
  ~load() { finish(); }
  void finish() {
    stop_ = true;
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }
  long answered_ok() const { return fresh_.ok + kept_.ok; }
  load_stats& fresh() { return fresh_; }
  load_stats& kept() { return kept_; }

 private:
  std::atomic<bool> stop_{false};
  load_stats fresh_, kept_;
  std::vector<std::thread> threads_;
};

struct home_dir : cproxy::test::proxy_home {
  std::string write(const std::string& name, const std::string& text) const {
    const std::string at = path + "/" + name;
    std::ofstream(at, std::ios::binary) << text;
    return at;
  }
};

int run(const home_dir& home, std::vector<std::string> args, std::string* out = nullptr) {
  child_process p({.args = std::move(args), .extra_env = {home.env()}, .refuse_io_uring = false});
  const int code = p.wait_exit(30s).value_or(-1);
  if (out) *out = p.out() + p.err();
  return code;
}

// The status object a fresh connection gets (the own page), or "".
std::string status_of(unsigned port) {
  const std::string response = cproxy::test::http_request(
      port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n", 5s);
  const auto body_at = response.find("\r\n\r\n");
  return response.starts_with("HTTP/1.1 200 ") && body_at != std::string::npos ? response.substr(body_at + 4)
                                                                               : std::string();
}

// Polls the status until `needle` stands in it; false at the deadline.
bool status_shows(unsigned port, const std::string& needle, std::chrono::milliseconds deadline = 10s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (status_of(port).find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool alive(int pid) {
  return ::kill(pid, 0) == 0;
}

// What a failed takeover found: the state file, the control socket, which pids still run.
std::string home_state(const home_dir& home, const std::vector<int>& pids) {
  std::ifstream state(home.path + "/proxy-state.json");
  std::string text((std::istreambuf_iterator<char>(state)), std::istreambuf_iterator<char>());
  text = "proxy-state.json: " + (text.empty() ? std::string("(none)") : text) + "\nproxy.sock " +
         (std::filesystem::exists(home.path + "/proxy.sock") ? "exists" : "is missing") + "\npids:";
  for (const int pid : pids) text += " " + std::to_string(pid) + (alive(pid) ? " (runs)" : " (gone)");
  return text + "\n";
}

std::string log_without_access_lines(const home_dir& home) {
  std::ifstream log(home.path + "/proxy.log");
  std::string kept;
  for (std::string l; std::getline(log, l);)
    if (l.find(" GET ") == std::string::npos) kept += l + "\n";
  return kept;
}

// Starts the first proxy with `start_args`, waits until its routes hold `route`, puts load on it, and
// replaces it `takeovers` times; then checks every answer and that each old proxy exited.
void take_over_under_load(const home_dir& home, const std::vector<std::string>& start_args,
                          const std::string& route) {
  const unsigned port = cproxy::test::free_port();
  std::vector<std::string> args{"proxy", "start", "--port", std::to_string(port)};
  args.insert(args.end(), start_args.begin(), start_args.end());
  std::string out;
  BOOST_TEST_REQUIRE(run(home, args, &out) == 0, out);
  std::vector<int> pids{cproxy::test::state_pid(home.path)};
  BOOST_TEST_REQUIRE(pids.back() > 0);
  BOOST_TEST_REQUIRE(status_shows(port, route), status_of(port) << "\n" << log_without_access_lines(home));

  args.push_back("--replace");
  {
    load clients(port, 2, 2);
    for (int waits = 0; waits < 500 && clients.answered_ok() < 200; ++waits)
      std::this_thread::sleep_for(10ms);
    for (int round = 1; round <= takeovers; ++round) {
      const int code = run(home, args, &out);
      BOOST_TEST_REQUIRE(code == 0, "takeover " << round << ": " << out << "\n"
                                                << home_state(home, pids) << log_without_access_lines(home));
      const int pid = cproxy::test::state_pid(home.path);
      const bool seen_before = std::find(pids.begin(), pids.end(), pid) != pids.end();
      BOOST_TEST_REQUIRE(!seen_before, "takeover " << round << ": the state file still names pid " << pid);
      pids.push_back(pid);
      BOOST_TEST_REQUIRE(status_shows(port, "\"pid\":" + std::to_string(pid)),
                         "takeover " << round << ": pid " << pid << " does not answer");
      // Load on the new proxy alone before the next takeover.
      const long served = clients.answered_ok();
      for (int waits = 0; waits < 500 && clients.answered_ok() < served + 200; ++waits)
        std::this_thread::sleep_for(10ms);
    }
    clients.finish();
    BOOST_TEST_MESSAGE("fresh connections: " << clients.fresh().summary());
    BOOST_TEST_MESSAGE("keep-alive connections: " << clients.kept().summary());
    const std::string log = log_without_access_lines(home);
    const std::string fresh = "fresh connections: " + clients.fresh().summary() + "\n" + log;
    const std::string kept = "keep-alive connections: " + clients.kept().summary() + "\n" + log;
    BOOST_TEST(clients.fresh().non_2xx == 0, fresh);
    BOOST_TEST(clients.fresh().errors == 0, fresh);
    BOOST_TEST(clients.kept().non_2xx == 0, kept);
    BOOST_TEST(clients.kept().errors == 0, kept);
    BOOST_TEST(clients.fresh().ok > 0);
    BOOST_TEST(clients.kept().ok > 0);
  }
  BOOST_TEST(status_shows(port, route), "the last proxy still routes: " << status_of(port));
  // Every predecessor drains and exits (bounded by its drain grace).
  for (std::size_t i = 0; i + 1 < pids.size(); ++i) {
    for (int waits = 0; waits < 1000 && alive(pids[i]); ++waits) std::this_thread::sleep_for(20ms);
    BOOST_TEST(!alive(pids[i]), "pid " << pids[i] << " still runs");
    if (alive(pids[i])) ::kill(pids[i], SIGKILL);
  }
  BOOST_TEST(run(home, {"proxy", "stop"}) == 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replace_under_load)

BOOST_DATA_TEST_CASE(routes_from_the_active_routes_file, bdata::make(backends), io) {
  home_dir home;
  keep_alive_upstream upstream;
  home.write("active-routes.json", R"({"version": 1, "routes": [{"serviceName": "api", "localPort": )" +
                                       std::to_string(upstream.port()) + "}]}");
  take_over_under_load(home, {"--threads", "2", "--io", io}, R"("source":"reach")");
}

BOOST_DATA_TEST_CASE(routes_from_the_hub, bdata::make(backends), io) {
  home_dir home;
  keep_alive_upstream upstream;
  // Later answers 300 ms late; from the 4th request on the hub is down (the routes must survive that too).
  slow_hub hub(R"([{"name": "api", "tunnelPort": )" + std::to_string(upstream.port()) + "}]", 300ms, 4);
  const std::string config =
      home.write("test-config.json", R"({"apiKey": "hub-key", "hubUrl": ")" + hub.url() + R"("})");
  take_over_under_load(home, {"--threads", "2", "--io", io, "--config", config}, R"("source":"hub")");
  BOOST_TEST(hub.requests() >= 2u, "the successors poll the hub themselves");
}

BOOST_AUTO_TEST_SUITE_END()
