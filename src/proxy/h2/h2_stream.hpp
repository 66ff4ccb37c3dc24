// h2_stream: one HTTP/2 stream as the HTTP/1.1 pipeline sees it: an io::stream whose reads give the
// request as an HTTP/1.1 message (head made from the HEADERS, body from the DATA frames, chunked when
// the length is unknown) and whose writes take the pipeline's HTTP/1.1 response, which becomes
// HEADERS and DATA frames. So every stream runs the very stages of an HTTP/1.1 request (routing,
// errors, header rewriting, pooled upstreams, tunnels) without a second implementation of them.
// Flow control: request DATA is given back to the client's window only as the pipeline reads it, and a
// response write waits while the stream's unsent bytes exceed a bound, so a slow reader of one stream
// holds back only its own upstream.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "connect/http/chunked.hpp"
#include "connect/http/head.hpp"
#include "connect/io/stream.hpp"
#include "wake.hpp"

namespace cproxy::proxy::h2 {

// The request header list bound (name + value + 32 per field, RFC 9113 section 6.5.2): the HTTP/1.1
// head limit, so a list over it is answered 431 as an HTTP/1.1 head over 64 KiB is.
inline constexpr std::size_t header_list_limit = http::header_limit;
// A header block that decodes past this is an HPACK bomb (a few KiB of indexed references expanding
// to megabytes), not a client that misjudged the limit: the connection ends with ENHANCE_YOUR_CALM.
inline constexpr std::size_t hpack_bomb_limit = 4 * header_list_limit;

class h2_stream final : public io::stream {
 public:
  h2_stream(nghttp2_session* session, std::int32_t id, io::context& ctx, wake* writer);
  h2_stream(const h2_stream&) = delete;
  h2_stream& operator=(const h2_stream&) = delete;

  // The request, from the session's nghttp2 callbacks.
  void add_header(std::string_view name, std::string_view value);
  // A field of the request's trailers (a HEADERS block after DATA, with END_STREAM).
  void add_trailer(std::string_view name, std::string_view value);
  // The request head is complete: it becomes HTTP/1.1 bytes for the pipeline to read.
  void headers_done(bool end_stream);
  // The request head's HTTP/1.1 bytes, taken out of what read_some gives (the pipeline parses them
  // from its buffer without a read); DATA that came with them stays to be read.
  std::string take_head();
  void add_data(std::span<const std::uint8_t> data);
  void end_request();
  // nghttp2 closed the stream (both ends done, or a reset by either side).
  void peer_closed() noexcept;
  bool head_too_large() const noexcept { return header_bytes_ > header_list_limit; }
  // The decoded size of the header block being received (the request head, or the trailers).
  std::size_t block_bytes() const noexcept { return head_done_ ? trailer_bytes_ : header_bytes_; }
  bool is_websocket() const noexcept { return websocket_; }

  // The response body for nghttp2's data provider; a chunked response's trailers end the stream as a
  // trailing HEADERS frame.
  ssize_t pull(std::uint8_t* buf, std::size_t length, std::uint32_t* data_flags);
  // The pipeline let go of the stream: a complete response ends it, anything else resets it.
  void finish() noexcept;

  std::int32_t id() const noexcept { return id_; }
  bool started = false;   // its pipeline coroutine runs (or ran)
  bool finished = false;  // that coroutine has ended
  bool closed_by_nghttp2() const noexcept { return closed_; }

  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration timeout) override;
  void cancel() noexcept override;
  // The pipeline's end of a response delimited by the close (or of a tunnel): END_STREAM.
  void shutdown_send() noexcept override;
  io::socket* plain_socket() noexcept override { return nullptr; }

 private:
  enum class phase { head, body, done };

  void take_response(std::string_view bytes);
  void submit_head();
  void submit_interim(const http::response_head& head);
  void add_body(std::string_view bytes);
  void end_body() noexcept;
  void wake_writer() noexcept;
  std::size_t unsent() const noexcept { return out_.size() - out_pos_; }

  nghttp2_session* session_;
  std::int32_t id_;
  wake* writer_;  // the session's writer: frames are waiting to go out
  wake read_wake_;
  wake write_wake_;

  // Request.
  std::string method_, path_, authority_, scheme_, protocol_;
  std::vector<std::pair<std::string, std::string>> fields_;
  std::string cookies_;
  std::size_t header_bytes_ = 0;
  std::string trailers_;  // "name: value\r\n" lines for the chunked body's trailer section
  std::size_t trailer_bytes_ = 0;
  bool head_done_ = false;
  bool has_length_ = false;
  bool chunked_request_ = false;
  bool websocket_ = false;
  bool tunnel_request_ = false;  // CONNECT or extended CONNECT: DATA are raw bytes after the head
  bool request_done_ = false;
  std::string in_;             // HTTP/1.1 bytes for the pipeline to read
  std::size_t head_size_ = 0;  // the head's bytes at the front of in_, until take_head
  std::size_t in_pos_ = 0;
  std::size_t unconsumed_ = 0;  // DATA bytes not yet given back to the client's window

  // Response.
  phase phase_ = phase::head;
  std::string head_bytes_;
  http::response_head response_;
  bool tunnel_ = false;
  std::uint64_t body_left_ = 0;
  http::chunked_scanner chunks_;
  std::string trailer_lines_;  // a chunked response's trailer section, "name: value\n" lines
  std::string out_;            // body bytes for DATA frames
  std::size_t out_pos_ = 0;
  bool body_done_ = false;
  bool head_submitted_ = false;
  bool broken_ = false;  // the response cannot be completed: the stream is reset when it ends

  bool closed_ = false;  // nghttp2 closed the stream
  bool reading_ = false, writing_ = false;
  bool read_cancelled_ = false, write_cancelled_ = false;
};

}  // namespace cproxy::proxy::h2
