// The request inspector's capture: the hooks the stages call to fill an exchange's record (heads as
// forwarded / received, bodies through a tap up to the limit), and the end of the exchange, which
// hands the record to the worker's shard of the store. Every hook does nothing when capture is off.
#pragma once

#include <optional>
#include <string_view>

#include "client_side.hpp"
#include "connect/http/chunked.hpp"
#include "connect/inspect/record.hpp"
#include "exchange.hpp"

namespace cproxy::proxy {

// At the start of an exchange: a record to fill, when the inspector is on.
void begin_capture(const client_side& c, exchange* ex);
// The request head as it went upstream.
void capture_forwarded_head(exchange* ex, std::string_view forwarded);
// The response head as received, and the body bytes that came with it.
void capture_response_head(exchange* ex, const http::response_head& resp);
// An answer the proxy made itself (its own page, an error's JSON): its head and body.
void capture_own_answer(exchange* ex, std::string_view answer);
// At the end of an exchange: the summary filled in and the record stored.
void end_capture(const client_side& c, exchange* ex);

// A stream that copies what is written through it into a captured body (the payload only, when the
// bytes are chunked), up to the limit. It hides the plain socket, so a tapped relay never splices.
class tap_stream final : public io::stream {
 public:
  tap_stream(io::stream* inner, inspect::captured_body* body, std::uint64_t limit, bool chunked) noexcept
      : inner_(inner), body_(body), limit_(limit), chunked_(chunked) {}
  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration timeout) override {
    return inner_->read_some(buf, timeout);
  }
  coro::task<io::received> read_any(io::duration timeout) override { return inner_->read_any(timeout); }
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration timeout) override;
  std::size_t try_write(std::span<const std::byte> buf) noexcept override { return inner_->try_write(buf); }
  void cancel() noexcept override { inner_->cancel(); }
  void shutdown_send() noexcept override { inner_->shutdown_send(); }
  io::socket* plain_socket() noexcept override { return nullptr; }

  void take(std::string_view bytes);

 private:
  io::stream* inner_;
  inspect::captured_body* body_;
  std::uint64_t limit_;
  bool chunked_;
  http::chunked_scanner scanner_;
  std::string payload_;
};

// The stream a body relay writes to: `to` itself, or a tap over it (kept in `holder`) when this body is
// captured. `response` picks the body; `framing`/`length` say whether it can fit the limit at all.
io::stream* tap_body(exchange* ex, bool response, io::stream* to, http::framing framing, std::uint64_t length,
                     std::optional<tap_stream>* holder);

}  // namespace cproxy::proxy
