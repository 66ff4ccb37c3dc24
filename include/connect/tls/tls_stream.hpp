// tls_stream: an io::stream that speaks TLS over another io::stream, its transport (a socket_stream
// in the proxy, an in-memory stream in tests). OpenSSL runs over two memory BIOs (sans-I/O, as Asio's
// SSL engine does): ciphertext read from the transport is written into the input BIO; what OpenSSL
// writes to the output BIO is sent after every SSL call. Connection code reads and
// writes plaintext exactly as it does on a socket_stream; only plain_socket() differs (nullptr: the
// bytes change on the way, so a relay cannot splice them).
//
// Concurrency: one read and one write may be in flight at once (a tunnel), as on a socket. Both run on
// the worker's thread, so OpenSSL calls never overlap. One transport write is in flight at a time: a read
// that makes OpenSSL write (a TLS 1.3 KeyUpdate answer) leaves the bytes to a send in progress, which sends
// until the output BIO is empty; a write that finds a send in progress waits for it, then sends.
#pragma once

#include <openssl/bio.h>

#include <coroutine>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "connect/io/stream.hpp"
#include "connect/tls/server_context.hpp"

namespace cproxy::io {
class context;
}

namespace cproxy::tls {

class tls_stream final : public io::stream {
 public:
  // `already_read`: bytes read from `socket` before it was known to be TLS (the sniffed ClientHello).
  tls_stream(io::socket socket, ssl_ptr session, std::span<const std::byte> already_read);
  // Over any transport (tests: an in-memory stream).
  tls_stream(std::unique_ptr<io::stream> transport, ssl_ptr session, std::span<const std::byte> already_read);
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  // The handshake, within `timeout`: the server side for a server_context's session, the client side
  // for a client_context's. `ctx` is the worker's context: a leaf minted on the minting thread resumes a
  // server handshake there.
  coro::task<std::error_code> handshake(io::context* ctx, io::duration timeout);
  // OpenSSL's reason for the last failure ("" when there was none), for the one log line it gets.
  const std::string& failure_reason() const noexcept { return failure_reason_; }
  // The protocol ALPN chose in the handshake ("h2", "http/1.1"), "" when none was.
  std::string_view alpn() const noexcept;
  // The session: a client reads its verification result after a failed handshake.
  SSL* native_handle() const noexcept { return ssl_.get(); }

  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration timeout) override;
  // Waits for ciphertext in the transport's buffers before it takes a plaintext buffer, so a connection
  // waiting for its next request holds none.
  coro::task<io::received> read_any(io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration timeout) override;
  void cancel() noexcept override { transport().cancel(); }
  // Queues close_notify and sends it if no write is in flight (else after it), then half-closes the
  // transport. The alert goes out with the transport's try_write: what it does not take is lost.
  void shutdown_send() noexcept override;
  io::socket* plain_socket() noexcept override { return nullptr; }

 private:
  // Sends what OpenSSL wrote to the output BIO, after the send in progress if there is one.
  coro::task<std::error_code> flush(io::duration timeout);
  void finish_shutdown() noexcept;
  struct flush_gate;
  struct write_in_progress;
  // Reads ciphertext from the transport into the input BIO; 0 bytes is EOF.
  coro::task<io::io_result> fill(io::duration timeout);
  std::error_code last_error(int ssl_error) noexcept;
  void init(std::span<const std::byte> already_read);
  void shed_idle_buffers() noexcept;
  io::stream& transport() noexcept { return other_ ? *other_ : socket_; }

  // The proxy's transport is held by value (no allocation per connection); any other by pointer.
  io::socket_stream socket_;
  std::unique_ptr<io::stream> other_;
  ssl_ptr ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  // Owned by this stream while the kernel reads from it; a send in flight always completes before the
  // stream is destroyed (the socket's rule). Receives use the transport's buffers (read_any).
  std::vector<std::byte> send_buf_;
  bool flushing_ = false;
  bool writing_ = false;  // a write_all is in progress (it may flush several times)
  bool shutdown_pending_ = false;
  std::error_code send_error_;            // shutdown_send() waits for the send in flight
  std::coroutine_handle<> flush_waiter_;  // at most one: the other direction of a tunnel
  std::string failure_reason_;
};

}  // namespace cproxy::tls
