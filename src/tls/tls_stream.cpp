// Implementation of connect/tls/tls_stream.hpp.
#include "connect/tls/tls_stream.hpp"

#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <coroutine>
#include <cstring>
#include <utility>

#include "connect/io/backend.hpp"

namespace cproxy::tls {
namespace {

using clock = std::chrono::steady_clock;

// Plaintext encrypted per SSL_write before the ciphertext is sent: four records per send.
constexpr std::size_t write_chunk = 64 * 1024;
// Pieces written together up to one record's plaintext are joined into one record: a client reads a
// response head and its short body with one SSL_read, not one per piece (a turn of its loop each).
constexpr std::size_t joined_limit = 16 * 1024;

io::duration left_until(clock::time_point deadline) {
  const auto left = std::chrono::ceil<io::duration>(deadline - clock::now());
  return left.count() > 0 ? left : io::duration{1};
}

// Resumes the handshake on its worker's thread once the minting thread has made its leaf.
struct minted {
  server_context* tls;
  std::string name;
  io::context* ctx;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    io::context* worker = ctx;
    tls->mint_async(name, [worker, h] { worker->post([h] { h.resume(); }); });
  }
  void await_resume() const noexcept {}
};

}  // namespace

std::string_view tls_stream::alpn() const noexcept {
  const unsigned char* name = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_.get(), &name, &length);
  return name ? std::string_view(reinterpret_cast<const char*>(name), length) : std::string_view{};
}

// Suspends a flush while another one sends; the sender resumes it when it is done.
struct tls_stream::flush_gate {
  tls_stream* stream;
  bool await_ready() const noexcept { return !stream->flushing_; }
  void await_suspend(std::coroutine_handle<> h) noexcept { stream->flush_waiter_ = h; }
  void await_resume() const noexcept {}
};

// Marks a write_all in progress for its whole length; a shutdown_send() that came meanwhile runs
// once it ends (unless a send of another direction is in flight: that flush runs it).
struct tls_stream::write_in_progress {
  tls_stream* stream;
  explicit write_in_progress(tls_stream* s) noexcept : stream(s) { stream->writing_ = true; }
  write_in_progress(const write_in_progress&) = delete;
  write_in_progress& operator=(const write_in_progress&) = delete;
  ~write_in_progress() {
    stream->writing_ = false;
    if (stream->shutdown_pending_ && !stream->flushing_) {
      stream->shutdown_pending_ = false;
      stream->finish_shutdown();
    }
  }
};

tls_stream::tls_stream(io::socket socket, ssl_ptr session, std::span<const std::byte> already_read)
    : socket_(std::move(socket)), ssl_(std::move(session)) {
  init(already_read);
}

tls_stream::tls_stream(std::unique_ptr<io::stream> transport, ssl_ptr session,
                       std::span<const std::byte> already_read)
    : socket_(io::socket{}), other_(std::move(transport)), ssl_(std::move(session)) {
  init(already_read);
}

void tls_stream::init(std::span<const std::byte> already_read) {
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  // An empty input BIO means "no bytes yet" (retry), not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  SSL_set_bio(ssl_.get(), in_, out_);
  // The side comes from the session's method: a server_context's sessions accept, a client_context's
  // connect (the hub client).
  if (SSL_is_server(ssl_.get()))
    SSL_set_accept_state(ssl_.get());
  else
    SSL_set_connect_state(ssl_.get());
  if (!already_read.empty()) BIO_write(in_, already_read.data(), static_cast<int>(already_read.size()));
}

std::error_code tls_stream::last_error(int ssl_error) noexcept {
  if (const unsigned long e = ERR_peek_last_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    try {
      failure_reason_ = text;
    } catch (...) {
    }
  }
  ERR_clear_error();  // the queue is per thread: leave nothing for the next connection's calls
  if (ssl_error == SSL_ERROR_SYSCALL) return std::make_error_code(std::errc::connection_aborted);
  return std::make_error_code(std::errc::protocol_error);
}

coro::task<std::error_code> tls_stream::handshake(io::context* ctx, io::duration timeout) {
  const clock::time_point deadline = clock::now() + timeout;
  bool minted_once = false;
  for (int steps = 0; steps < 10'000; ++steps) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_.get());
    if (rc == 1) {
      // TLS 1.3 session tickets are written as the handshake completes. A client that closes without
      // waiting for them (openssl s_time) has still completed its handshake: a failed send shows on
      // the first read, as any closed connection does.
      co_await flush(left_until(deadline));
      co_return std::error_code{};
    }
    const int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
      if (minted_once) co_return std::make_error_code(std::errc::protocol_error);  // minting failed (logged)
      minted_once = true;
      auto* tls = static_cast<server_context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl_.get())));
      minted mint{tls, std::string(server_context::pending_name(ssl_.get())),
                  ctx};  // GCC 12: no temporary in co_await
      co_await mint;
      continue;
    }
    if (err != SSL_ERROR_WANT_READ) {
      // The reason first (the error queue is the thread's: other connections use it while this one
      // waits), then the alert that tells the client why.
      const std::error_code failed = last_error(err);
      co_await flush(left_until(deadline));
      co_return failed;
    }
    if (BIO_ctrl_pending(out_) > 0) {
      if (const std::error_code ec = co_await flush(left_until(deadline))) co_return ec;
    }
    const io::io_result r = co_await fill(left_until(deadline));
    if (r.ec) co_return r.ec;
    if (r.bytes == 0) co_return std::make_error_code(std::errc::connection_aborted);
  }
  co_return std::make_error_code(std::errc::protocol_error);
}

coro::task<io::io_result> tls_stream::fill(io::duration timeout) {
  // Into a buffer the transport picks when bytes arrive (io_uring's provided buffers): a connection
  // waiting for its next request holds no receive buffer of its own.
  io::received r = co_await transport().read_any(timeout);
  if (r.ec) co_return io::io_result{r.ec, 0};
  const std::span<const std::byte> bytes = r.data.bytes();
  if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
  co_return io::io_result{{}, bytes.size()};
}

coro::task<std::error_code> tls_stream::flush(io::duration timeout) {
  if (flushing_) {
    // The other direction of a tunnel is sending: wait for it (one send in flight per socket), then
    // send what is left, so a writer returns only once its bytes went out or failed.
    flush_gate gate{this};
    co_await gate;
  }
  if (send_error_) co_return send_error_;  // an earlier send failed: the bytes queued behind it are lost
  flushing_ = true;
  std::error_code ec;
  for (std::size_t pending = BIO_ctrl_pending(out_); pending > 0 && !ec; pending = BIO_ctrl_pending(out_)) {
    // Copied out of the BIO: a read that runs meanwhile may make OpenSSL write to (and reallocate) it.
    send_buf_.resize(std::min(pending, write_chunk + 1024));
    const int n = BIO_read(out_, send_buf_.data(), static_cast<int>(send_buf_.size()));
    if (n <= 0) break;
    const std::span<const std::byte> bytes(send_buf_.data(), static_cast<std::size_t>(n));
    const io::io_result r = co_await transport().write_all(bytes, timeout);
    ec = r.ec;
  }
  if (ec) {
    send_error_ = ec;
    (void)BIO_reset(out_);  // the stream is broken: no later send may start mid-record
  }
  flushing_ = false;
  if (shutdown_pending_ && (ec || (!flush_waiter_ && !writing_))) {
    // After the last bytes that will go out: a waiter's flush or the rest of a write_all sends its
    // bytes first, but after a failed send nothing goes out.
    shutdown_pending_ = false;
    finish_shutdown();
  }
  if (flush_waiter_) {
    // Last: the waiter runs until its next suspension and may end this stream's use.
    std::exchange(flush_waiter_, {}).resume();
  }
  co_return ec;
}

coro::task<io::io_result> tls_stream::read_some(std::span<std::byte> buf, io::duration timeout) {
  for (;;) {  // until plaintext, EOF or an error: each pass that gets none waits for ciphertext (timed)
    ERR_clear_error();
    std::size_t n = 0;
    const int rc = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
    if (rc == 1) {
      if (BIO_ctrl_pending(out_) > 0 && !flushing_) {
        // A KeyUpdate or similar wanted an answer.
        if (const std::error_code ec = co_await flush(timeout)) co_return io::io_result{ec, 0};
      }
      co_return io::io_result{{}, n};
    }
    const int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_ZERO_RETURN) co_return io::io_result{{}, 0};  // close_notify: EOF
    if (err != SSL_ERROR_WANT_READ) co_return io::io_result{last_error(err), 0};
    if (BIO_ctrl_pending(out_) > 0 && !flushing_) {
      if (const std::error_code ec = co_await flush(timeout)) co_return io::io_result{ec, 0};
    }
    const io::io_result r = co_await fill(timeout);
    if (r.ec) co_return io::io_result{r.ec, 0};
    if (r.bytes == 0) co_return io::io_result{{}, 0};  // EOF without close_notify: tolerated
  }
}

// Before an idle wait, the buffers a past burst grew go back: the send copy and the memory BIOs keep
// their largest size otherwise (the handshake's flight, a body), about 7 KiB per idle connection. A BIO
// under 1 KiB stays, so a keep-alive request with a small answer pays no allocation for it.
void tls_stream::shed_idle_buffers() noexcept {
  constexpr std::size_t keep = 1024;
  if (flushing_ || writing_ || BIO_ctrl_pending(in_) > 0 || BIO_ctrl_pending(out_) > 0) return;
  std::vector<std::byte>().swap(send_buf_);
  BUF_MEM* held = nullptr;
  if (BIO_get_mem_ptr(in_, &held) > 0 && held && held->max > keep) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      BIO_set_mem_eof_return(fresh, -1);
      SSL_set0_rbio(ssl_.get(), fresh);  // frees the old one
      in_ = fresh;
    }
  }
  held = nullptr;
  if (BIO_get_mem_ptr(out_, &held) > 0 && held && held->max > keep) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_.get(), fresh);
      out_ = fresh;
    }
  }
}

// The default read_any takes its 16 KiB plaintext buffer before it waits: that was 16 of the 39 KiB an
// idle keep-alive TLS connection held (heaptrack, 1,000 of them).
coro::task<io::received> tls_stream::read_any(io::duration timeout) {
  if (SSL_pending(ssl_.get()) == 0 && BIO_ctrl_pending(in_) == 0) {
    if (BIO_ctrl_pending(out_) > 0 && !flushing_) {
      if (const std::error_code ec = co_await flush(timeout)) co_return io::received{ec, {}};
    }
    shed_idle_buffers();
    const io::io_result r = co_await fill(timeout);
    if (r.ec) co_return io::received{r.ec, {}};
    if (r.bytes == 0) co_return io::received{};  // EOF without close_notify: tolerated, as read_some does
  }
  coro::task<io::received> decrypted = io::stream::read_any(timeout);
  co_return co_await std::move(decrypted);
}

coro::task<io::io_result> tls_stream::write_all(std::span<const std::byte> buf, io::duration timeout) {
  const io::const_buffer one{buf.data(), buf.size()};
  co_return co_await write_all(std::span<const io::const_buffer>(&one, 1), timeout);
}

coro::task<io::io_result> tls_stream::write_all(std::span<const io::const_buffer> bufs,
                                                io::duration timeout) {
  // Encrypt every piece, then send the records together: a head and a small body leave in one send.
  const write_in_progress writing{this};
  std::size_t done = 0;
  std::size_t total = 0;
  for (const io::const_buffer& b : bufs) total += b.size;
  io::const_buffer one{};
  if (bufs.size() > 1 && total <= joined_limit) {
    // SSL_write takes all of it (one record) before anything below waits, so one buffer per thread
    // serves every stream of the thread.
    thread_local std::array<std::byte, joined_limit> joined;
    std::size_t at = 0;
    for (const io::const_buffer& b : bufs) {
      if (b.size > 0) std::memcpy(joined.data() + at, b.data, b.size);
      at += b.size;
    }
    one = io::const_buffer{joined.data(), total};
    bufs = std::span<const io::const_buffer>(&one, 1);
  }
  for (const io::const_buffer& b : bufs) {
    const auto* p = static_cast<const std::byte*>(b.data);
    for (std::size_t off = 0; off < b.size;) {
      ERR_clear_error();
      std::size_t n = 0;
      const std::size_t chunk = std::min(b.size - off, write_chunk);
      if (SSL_write_ex(ssl_.get(), p + off, chunk, &n) != 1)
        co_return io::io_result{last_error(SSL_get_error(ssl_.get(), 0)), done};
      off += n;
      done += n;
      if (BIO_ctrl_pending(out_) >= write_chunk) {
        if (const std::error_code ec = co_await flush(timeout)) co_return io::io_result{ec, done};
      }
    }
  }
  if (const std::error_code ec = co_await flush(timeout)) co_return io::io_result{ec, done};
  co_return io::io_result{{}, done};
}

void tls_stream::shutdown_send() noexcept {
  if (flushing_ || writing_) {
    // After the write in flight (all of it: a large one sends several times), or the half-close
    // would cut it off.
    shutdown_pending_ = true;
    return;
  }
  finish_shutdown();
}

void tls_stream::finish_shutdown() noexcept {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_.get()) && SSL_shutdown(ssl_.get()) < 0) ERR_clear_error();
  // close_notify is a few dozen bytes: a non-blocking send puts it in the socket buffer. Anything
  // larger is the rest of a failed flush, not worth sending; nothing goes after a failed send.
  std::byte alert[256];
  if (!send_error_ && BIO_ctrl_pending(out_) <= sizeof alert) {
    const int n = BIO_read(out_, alert, sizeof alert);
    if (n > 0) (void)transport().try_write(std::span<const std::byte>(alert, static_cast<std::size_t>(n)));
  }
  transport().shutdown_send();
}

}  // namespace cproxy::tls
