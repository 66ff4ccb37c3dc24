// A blocking loopback client for exact bytes: sends what the test wrote (framing attacks, pipelining) and
// reads responses with a deadline on every call, so a proxy that hangs fails the test instead of stalling it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_message.hpp"

namespace cproxy::http_test {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

struct http_response {
  message_head head;
  int status = 0;
  std::string body;  // decoded (chunked framing removed)
  std::vector<field> trailers;
  bool chunked = false;
  bool close_delimited = false;  // no Content-Length or chunked: the body ran to the close

  std::optional<std::string> get(std::string_view name) const { return head.get(name); }
};

class raw_client {
 public:
  // Connects to 127.0.0.1:port; ok() says whether it worked, error() why not.
  explicit raw_client(unsigned port, ms deadline = 10s);
  ~raw_client();
  raw_client(raw_client&& other) noexcept;
  raw_client& operator=(raw_client&&) = delete;
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool ok() const { return fd_ >= 0 && connected_; }
  int fd() const { return fd_; }
  const std::string& error() const { return error_; }

  bool send(std::string_view bytes, ms deadline = 10s);
  void shutdown_write();
  void close();

  // Reads until `needle` is buffered (true), or EOF/deadline (false).
  bool read_until(std::string_view needle, ms deadline = 10s);
  // Reads exactly n bytes into the buffer (true) or fails at EOF/deadline.
  bool read_at_least(std::size_t n, ms deadline = 10s);
  // One response, interim 1xx ones included (the caller loops past them). `head_request`: the response
  // to a HEAD has no body whatever its framing fields say; `connect_request`: nor has a 2xx to a CONNECT
  // (the tunnel starts right after it). Nullopt on EOF/deadline/garbage: see error().
  std::optional<http_response> read_response(ms deadline = 10s, bool head_request = false,
                                             bool connect_request = false);
  // The next response whose status is not 1xx; interim ones are appended to `interim` when given.
  std::optional<http_response> read_final_response(ms deadline = 10s, bool head_request = false,
                                                   std::vector<http_response>* interim = nullptr);
  // True when the peer closed (EOF or reset) within the deadline; data read meanwhile stays buffered.
  bool wait_closed(ms deadline = 5s);
  bool peer_closed() const { return eof_; }

  std::string& buffer() { return in_; }

 private:
  enum class got { data, eof, timeout };
  got fill(std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
  bool connected_ = false;
  std::string error_;
};

// Shows bytes readably in failure messages: CR, LF, NUL and other controls escaped, long text cut.
std::string printable(std::string_view bytes, std::size_t limit = 600);

}  // namespace cproxy::http_test
