// In-process upstream servers on 127.0.0.1 ephemeral ports, one thread per connection, blocking sockets:
// they record the exact bytes and the requests they receive (tests check them afterwards, on the test
// thread) and answer with scripted bytes. Not a conforming HTTP server: it says what it got.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "http/http_message.hpp"

namespace cproxy::http_test {

using namespace std::chrono_literals;

struct recorded_request {
  std::size_t connection = 0;  // index of the upstream connection it came on, in accept order
  message_head head;
  std::string method;
  std::string target;
  std::string version;
  std::string body;  // the server's record keeps at most the first 1 MiB
  std::size_t body_size = 0;
  std::vector<field> trailers;
  bool chunked = false;
  bool body_complete = false;  // false: the head arrived but the body did not (yet, or ever)

  std::optional<std::string> get(std::string_view name) const { return head.get(name); }
};

class upstream_server;

// One accepted connection, handed to the server's handler on its own thread. Every read is bounded.
class upstream_conn {
 public:
  upstream_conn(upstream_server& server, int fd, std::size_t index);
  ~upstream_conn();
  upstream_conn(const upstream_conn&) = delete;
  upstream_conn& operator=(const upstream_conn&) = delete;

  // The next request: its head, then its body by Content-Length or chunked. Recorded in the server as soon
  // as the head is in (body_complete false) and updated once the body is, so a test can tell a forwarded
  // head from a complete request. Answers "100 Continue" first when the request expects it, as Node does.
  // Nullopt on EOF or deadline before a whole head; a request whose body does not complete is returned
  // with body_complete false.
  std::optional<recorded_request> read_request(std::chrono::milliseconds deadline = 20s);
  // Whatever bytes arrive next (buffered ones first); nullopt on EOF or deadline.
  std::optional<std::string> read_some(std::chrono::milliseconds deadline = 20s);
  bool write(std::string_view bytes, std::chrono::milliseconds deadline = 20s);
  // Reads (and records) until the peer closes; true if it did within the deadline or the server stops.
  bool wait_peer_close(std::chrono::milliseconds deadline);
  void shutdown_write();

  int fd() const { return fd_; }
  std::size_t index() const { return index_; }
  upstream_server& server() { return server_; }
  std::string& buffered() { return in_; }  // read but not consumed

 private:
  enum class got { data, eof, timeout };
  got fill(std::chrono::steady_clock::time_point until);
  upstream_server& server_;
  int fd_;
  std::size_t index_;
  std::string in_;
};

class upstream_server {
 public:
  using handler = std::function<void(upstream_conn&)>;
  // record_raw false: the bytes of each connection are not kept (for 64 MiB bodies).
  upstream_server(std::string name, handler h, bool record_raw = true);
  ~upstream_server();
  upstream_server(const upstream_server&) = delete;
  upstream_server& operator=(const upstream_server&) = delete;

  // Stops accepting, shuts every open connection down (so blocked handlers return) and joins them.
  void stop();

  unsigned port() const { return port_; }
  const std::string& name() const { return name_; }
  bool stopping() const { return stop_.load(); }

  std::vector<recorded_request> requests() const;
  // The requests whose target contains `needle`.
  std::vector<recorded_request> requests_for(std::string_view needle) const;
  std::vector<std::string> raw_connections() const;
  std::size_t accepted() const;
  // True if any connection's raw bytes contain `needle`.
  bool received(std::string_view needle) const;

  // Used by upstream_conn.
  void record_raw(std::size_t connection, std::string_view bytes);
  std::size_t record_request(const recorded_request& r);
  void update_request(std::size_t slot, const recorded_request& r);
  void forget_fd(int fd);

 private:
  void accept_loop();
  std::string name_;
  handler handler_;
  bool record_raw_;
  int listen_fd_ = -1;
  unsigned port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<int> open_fds_;
  std::vector<std::string> raw_;
  std::vector<recorded_request> requests_;
  std::thread acceptor_;  // last: started once everything above exists
};

// "HTTP/1.1 <status> <reason>" with Content-Length, the extra header lines (each without CRLF), and body.
std::string simple_response(int status, std::string_view reason, std::string_view body,
                            const std::vector<std::string>& extra_lines = {});

// A scripted HTTP upstream: each request goes to the script registered under the longest string its
// target contains; without one the answer is 200 with `X-Upstream: <name>` and the request head exactly as
// received as the body, so a test sees what the proxy forwarded. A script returns false to end the
// connection.
class scripted_upstream {
 public:
  using script = std::function<bool(upstream_conn&, const recorded_request&)>;
  explicit scripted_upstream(std::string name, bool record_raw = true);

  void on(std::string target_part, script s);
  unsigned port() const { return server_->port(); }
  upstream_server& server() { return *server_; }
  const upstream_server& server() const { return *server_; }
  const std::string& name() const { return server_->name(); }

 private:
  struct table {
    std::mutex mu;
    std::vector<std::pair<std::string, script>> scripts;
  };
  std::shared_ptr<table> table_;
  std::unique_ptr<upstream_server> server_;
};

// The default answer of a scripted upstream, for scripts that want it after doing something else.
bool answer_with_head(upstream_conn& c, const recorded_request& r);

// Echoes every byte back until the peer closes (for CONNECT tunnels).
std::unique_ptr<upstream_server> make_byte_echo(std::string name);

// A loopback port nothing listens on, for refused-upstream tests. It stays bound, not listening, on
// 127.0.0.1 and (where there is IPv6) ::1 for the object's life: a connection to it is refused, and no
// other socket can take the port meanwhile. A port only bound and closed again was once taken during
// a CI run (the e2e suite runs beside this one), and the proxy reached whatever answered there.
class closed_port {
 public:
  closed_port();
  ~closed_port();
  closed_port(const closed_port&) = delete;
  closed_port& operator=(const closed_port&) = delete;
  unsigned port() const { return port_; }

 private:
  int v4_ = -1;
  int v6_ = -1;
  unsigned port_ = 0;
};

// Bounded wait for a condition a test releases and an upstream thread waits on (SSE event gates).
class gate {
 public:
  void open_to(int n);
  // True once open_to(k) (or more) happened, false after the deadline.
  bool wait_for(int k, std::chrono::milliseconds deadline);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int open_ = 0;
};

}  // namespace cproxy::http_test
