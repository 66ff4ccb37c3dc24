// h2_stream: an HTTP/2 stream turned into the HTTP/1.1 bytes the pipeline reads and writes (see
// h2_stream.hpp). The request head is made here; the pipeline's strict HTTP/1.1 parser then checks it as
// it checks any request.
#include "h2_stream.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <string_view>
#include <utility>

namespace cproxy::proxy::h2 {
namespace {

// Unsent response bytes above which the pipeline's write waits for the client to take some.
constexpr std::size_t unsent_limit = 256 * 1024;

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 7> names{
      "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "http2-settings"};
  return std::find(names.begin(), names.end(), name) != names.end();
}

void lower_in_place(std::string& s) {
  for (char& ch : s)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
}

std::string lower(std::string_view s) {
  std::string out(s);
  lower_in_place(out);
  return out;
}

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

using field_line = std::pair<std::string, std::string>;

// A chunked response's trailer lines as HTTP/2 fields: names lowercased; a line that is not
// "token: value", hop-by-hop fields and those that frame or route a message (RFC 9110 section 6.5.1)
// are left out. Past the header list limit none are sent.
std::vector<field_line> response_trailers(std::string_view lines) {
  std::vector<field_line> out;
  if (lines.size() > header_list_limit) return out;
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    const std::string_view line = lines.substr(0, end);
    lines = end == std::string_view::npos ? std::string_view{} : lines.substr(end + 1);
    const std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) continue;
    const std::string_view raw_name = line.substr(0, colon);
    if (!std::all_of(raw_name.begin(), raw_name.end(), is_tchar)) continue;
    std::string name = lower(raw_name);
    if (is_hop_by_hop(name) || name == "content-length" || name == "host" || name == "trailer") continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out.emplace_back(std::move(name), std::string(value));
  }
  return out;
}

// A Sec-WebSocket-Key for the HTTP/1.1 upgrade (an HTTP/2 client sends none, RFC 8441 section 5): 16
// random bytes in base64. Its only use is the upstream's accept value, which is not passed on.
std::string websocket_key() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  thread_local std::mt19937 gen{std::random_device{}()};
  std::string key;
  for (int i = 0; i < 21; ++i) key += alphabet[gen() % 64];
  key += alphabet[(gen() % 4) * 16];  // 16 bytes end on a partial sextet
  key += "==";
  return key;
}

}  // namespace

h2_stream::h2_stream(nghttp2_session* session, std::int32_t id, io::context& ctx, wake* writer)
    : session_(session), id_(id), writer_(writer), read_wake_(ctx), write_wake_(ctx) {}

void h2_stream::add_header(std::string_view name, std::string_view value) {
  if (head_done_) return;
  header_bytes_ += name.size() + value.size() + 32;
  if (head_too_large()) return;  // an HPACK bomb stops costing memory here; the stream gets its 431
  if (name == ":method")
    method_ = value;
  else if (name == ":path")
    path_ = value;
  else if (name == ":authority")
    authority_ = value;
  else if (name == ":scheme")
    scheme_ = value;
  else if (name == ":protocol")
    protocol_ = value;
  else if (name == "cookie") {
    if (!cookies_.empty()) cookies_ += "; ";
    cookies_ += value;
  } else {
    if (name == "content-length") has_length_ = true;
    if (fields_.empty()) fields_.reserve(8);  // one allocation for the usual request
    fields_.emplace_back(name, value);
  }
}

void h2_stream::add_trailer(std::string_view name, std::string_view value) {
  trailer_bytes_ += name.size() + value.size() + 32;
  // Only a chunked body has a trailer section in HTTP/1.1; after a Content-Length body (or in a
  // tunnel) there is nowhere to put them. Past the header list limit they are not kept.
  if (!chunked_request_ || trailer_bytes_ > header_list_limit) return;
  trailers_ += name;
  trailers_ += ": ";
  trailers_ += value;
  trailers_ += "\r\n";
}

void h2_stream::headers_done(bool end_stream) {
  head_done_ = true;
  request_done_ = end_stream;
  websocket_ = method_ == "CONNECT" && !protocol_.empty();
  tunnel_request_ = method_ == "CONNECT";
  const std::string_view host_field = [&]() -> std::string_view {
    for (const auto& [name, value] : fields_)
      if (name == "host") return value;
    return {};
  }();
  const std::string_view host = authority_.empty() ? host_field : std::string_view(authority_);
  // Appended piece by piece into one buffer sized up front: concatenated temporaries were 11% of the h2
  // path's mallocs.
  std::string& h = in_;
  if (!head_too_large()) h.reserve(h.size() + header_bytes_ + 64 + cookies_.size() + (websocket_ ? 96 : 0));
  const auto line = [&h](std::string_view a, std::string_view b, std::string_view c) {
    h.append(a).append(b).append(c);
  };
  if (websocket_) {
    line("GET ", path_, " HTTP/1.1\r\n");
  } else if (tunnel_request_) {
    line("CONNECT ", authority_, " HTTP/1.1\r\n");
  } else {
    h += method_;
    line(" ", path_, " HTTP/1.1\r\n");
  }
  if (!host.empty()) line("host: ", host, "\r\n");
  for (const auto& [name, value] : fields_) {
    if (name == "host" && !authority_.empty()) continue;  // :authority wins (RFC 9113 section 8.3.1)
    line(name, ": ", value);
    h += "\r\n";
  }
  if (!cookies_.empty()) line("cookie: ", cookies_, "\r\n");
  if (websocket_) {
    line("connection: Upgrade\r\nupgrade: ", protocol_, "\r\n");
    line("sec-websocket-key: ", websocket_key(), "\r\n");
  } else if (!tunnel_request_ && !end_stream && !has_length_) {
    h += "transfer-encoding: chunked\r\n";
    chunked_request_ = true;
  }
  h += "\r\n";
  if (head_too_large()) in_.clear();
  head_size_ = in_.size();
  read_wake_.notify();
}

std::string h2_stream::take_head() {
  if (in_pos_ == 0 && in_.size() == head_size_) {  // no DATA came with the head: the buffer itself
    std::string head = std::move(in_);
    in_.clear();
    head_size_ = 0;
    return head;
  }
  std::string head = in_.substr(in_pos_, head_size_);
  in_.erase(0, in_pos_ + head_size_);
  in_pos_ = 0;
  head_size_ = 0;
  return head;
}

void h2_stream::add_data(std::span<const std::uint8_t> data) {
  unconsumed_ += data.size();
  const std::string_view bytes(reinterpret_cast<const char*>(data.data()), data.size());
  if (chunked_request_) {
    if (bytes.empty()) return;
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    in_ += size;
    in_ += bytes;
    in_ += "\r\n";
  } else {
    in_ += bytes;
  }
  read_wake_.notify();
}

void h2_stream::end_request() {
  if (request_done_) return;
  request_done_ = true;
  if (chunked_request_) {
    in_ += "0\r\n";
    in_ += trailers_;
    in_ += "\r\n";
    trailers_.clear();
  }
  read_wake_.notify();
}

void h2_stream::peer_closed() noexcept {
  closed_ = true;
  read_wake_.notify();
  write_wake_.notify();
}

coro::task<io::io_result> h2_stream::read_some(std::span<std::byte> buf, io::duration timeout) {
  for (;;) {
    if (in_pos_ < in_.size()) {
      const std::size_t n = std::min(buf.size(), in_.size() - in_pos_);
      std::memcpy(buf.data(), in_.data() + in_pos_, n);
      in_pos_ += n;
      if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
      }
      // The client may send more once the pipeline took these (framing bytes count as data here: the
      // window given back never exceeds what came).
      const std::size_t give = in_.empty() ? unconsumed_ : std::min(unconsumed_, n);
      if (give > 0 && !closed_) {
        nghttp2_session_consume_stream(session_, id_, give);
        wake_writer();
      }
      unconsumed_ -= give;
      co_return io::io_result{{}, n};
    }
    // The end of the request is not an EOF while the response runs: the HTTP/1.1 code watches the
    // client for a close while it waits for the upstream. A tunnel's input ends with the client's.
    if (phase_ == phase::done && !tunnel_) co_return io::io_result{{}, 0};
    if (tunnel_ && request_done_) co_return io::io_result{{}, 0};
    if (closed_) co_return io::io_result{std::make_error_code(std::errc::connection_reset), 0};
    if (read_cancelled_) {
      read_cancelled_ = false;
      co_return io::io_result{std::make_error_code(std::errc::operation_canceled), 0};
    }
    reading_ = true;
    const wake::outcome w = co_await read_wake_.wait(timeout);
    reading_ = false;
    if (w == wake::outcome::timed_out) co_return io::io_result{std::make_error_code(std::errc::timed_out), 0};
    if (w == wake::outcome::cancelled)
      co_return io::io_result{std::make_error_code(std::errc::operation_canceled), 0};
  }
}

coro::task<io::io_result> h2_stream::write_all(std::span<const std::byte> buf, io::duration timeout) {
  const io::const_buffer one{buf.data(), buf.size()};
  co_return co_await write_all(std::span<const io::const_buffer>(&one, 1), timeout);
}

coro::task<io::io_result> h2_stream::write_all(std::span<const io::const_buffer> bufs, io::duration timeout) {
  if (closed_) co_return io::io_result{std::make_error_code(std::errc::connection_reset), 0};
  std::size_t total = 0;
  for (const io::const_buffer& b : bufs) {
    take_response(std::string_view(static_cast<const char*>(b.data), b.size));
    total += b.size;
  }
  if (broken_) co_return io::io_result{std::make_error_code(std::errc::protocol_error), 0};
  while (unsent() > unsent_limit) {
    if (closed_) co_return io::io_result{std::make_error_code(std::errc::connection_reset), 0};
    if (write_cancelled_) {
      write_cancelled_ = false;
      co_return io::io_result{std::make_error_code(std::errc::operation_canceled), 0};
    }
    writing_ = true;
    const wake::outcome w = co_await write_wake_.wait(timeout);
    writing_ = false;
    if (w == wake::outcome::timed_out) co_return io::io_result{std::make_error_code(std::errc::timed_out), 0};
    if (w == wake::outcome::cancelled)
      co_return io::io_result{std::make_error_code(std::errc::operation_canceled), 0};
  }
  co_return io::io_result{{}, total};
}

void h2_stream::cancel() noexcept {
  if (reading_) {
    read_cancelled_ = true;
    read_wake_.notify();
  }
  if (writing_) {
    write_cancelled_ = true;
    write_wake_.notify();
  }
}

void h2_stream::shutdown_send() noexcept {
  if (phase_ == phase::body && (tunnel_ || response_.body == http::framing::until_close)) end_body();
}

// The pipeline's HTTP/1.1 response: its head (after any 1xx other than 101), then the body by its framing.
void h2_stream::take_response(std::string_view bytes) {
  while (!bytes.empty() && !broken_) {
    if (phase_ == phase::head) {
      // The pipeline writes a head whole: it is parsed where it lies, and kept only when it is not.
      const bool buffered = !head_bytes_.empty();
      if (buffered) head_bytes_ += bytes;
      const std::string_view source = buffered ? std::string_view(head_bytes_) : bytes;
      bytes = {};
      http::response_head head;
      const std::string_view method = websocket_ ? "GET" : method_;
      const http::parse_result r = http::parse_response(source, method, head);
      if (r.status == http::parse_status::need_more) {
        if (!buffered) head_bytes_.assign(source);
        return;
      }
      if (r.status != http::parse_status::complete) {
        broken_ = true;
        return;
      }
      std::string held_rest;
      if (buffered) held_rest.assign(source.substr(r.consumed));
      const std::string_view rest = buffered ? std::string_view(held_rest) : source.substr(r.consumed);
      head_bytes_.clear();
      if (head.status >= 100 && head.status < 200 && head.status != 101) {
        submit_interim(head);
        take_response(rest);
        return;
      }
      response_ = std::move(head);
      tunnel_ = (websocket_ && response_.status == 101) ||
                (tunnel_request_ && !websocket_ && response_.status / 100 == 2);
      submit_head();
      if (!rest.empty()) take_response(rest);
      return;
    }
    if (phase_ == phase::body) {
      add_body(bytes);
      return;
    }
    return;  // bytes after a complete response: nothing to carry them
  }
}

// The fields point into response_, whose names are lowercased in place (nghttp2 copies them): a copy of
// every name and value was 11% of the h2 path's mallocs.
void h2_stream::submit_head() {
  std::string status = std::to_string(tunnel_ ? 200 : response_.status);
  std::string connection_tokens;
  for (const http::field& f : response_.fields)
    if (http::iequals(f.name, "connection")) {
      connection_tokens += ',';
      connection_tokens += f.value;
    }
  const auto field_of = [](std::string& name, std::string& value) {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(name.data()),
                      reinterpret_cast<std::uint8_t*>(value.data()), name.size(), value.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  std::string status_name = ":status";
  std::vector<nghttp2_nv> nv;
  nv.reserve(response_.fields.size() + 1);
  nv.push_back(field_of(status_name, status));
  for (http::field& f : response_.fields) {
    lower_in_place(f.name);
    const std::string_view name = f.name;
    if (is_hop_by_hop(name) || http::has_token(connection_tokens, name)) continue;
    if (tunnel_ && (name == "sec-websocket-accept" || name == "content-length")) continue;
    nv.push_back(field_of(f.name, f.value));
  }
  const bool has_body = tunnel_ || response_.body != http::framing::none;
  body_left_ = response_.content_length;
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
    return static_cast<h2_stream*>(source->ptr)->pull(buf, length, flags);
  };
  if (closed_ ||
      nghttp2_submit_response(session_, id_, nv.data(), nv.size(), has_body ? &provider : nullptr) != 0) {
    broken_ = true;
    return;
  }
  head_submitted_ = true;
  phase_ = phase::body;
  if (!has_body || (response_.body == http::framing::length && body_left_ == 0 && !tunnel_)) {
    body_done_ = true;
    phase_ = phase::done;
    if (has_body) nghttp2_session_resume_data(session_, id_);
  }
  wake_writer();
  read_wake_.notify();
}

// An interim answer (100 Continue, 103 Early Hints) as a HEADERS frame without END_STREAM before the
// final one (RFC 9113 section 8.1): a client waiting on Expect: 100-continue sends its body at once, and
// a browser preloads what 103's Link fields name while the upstream still works on the page.
void h2_stream::submit_interim(const http::response_head& head) {
  if (closed_ || head_submitted_) return;
  std::vector<field_line> fields{{":status", std::to_string(head.status)}};
  std::string connection_tokens;
  for (const http::field& f : head.fields)
    if (http::iequals(f.name, "connection")) connection_tokens += "," + f.value;
  for (const http::field& f : head.fields) {
    std::string name = lower(f.name);
    if (is_hop_by_hop(name) || http::has_token(connection_tokens, name) || name == "content-length") continue;
    fields.emplace_back(std::move(name), f.value);
  }
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (auto& [name, value] : fields)
    nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(name.data()),
                            reinterpret_cast<std::uint8_t*>(value.data()), name.size(), value.size(),
                            NGHTTP2_NV_FLAG_NONE});
  // nghttp2 copies the fields; a failure leaves the stream to its final response.
  if (nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id_, nullptr, nv.data(), nv.size(), nullptr) == 0)
    wake_writer();
}

void h2_stream::add_body(std::string_view bytes) {
  if (tunnel_ || response_.body == http::framing::until_close) {
    out_ += bytes;
  } else if (response_.body == http::framing::length) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, bytes.size()));
    out_ += bytes.substr(0, n);
    body_left_ -= n;
    if (body_left_ == 0) end_body();
  } else if (response_.body == http::framing::chunked) {
    std::size_t used = 0;
    // Trailers past the header list limit are not kept (the scanner still checks them).
    std::string* trailers = trailer_lines_.size() <= header_list_limit ? &trailer_lines_ : nullptr;
    const http::chunked_scanner::status s = chunks_.feed(bytes, used, &out_, trailers);
    if (s == http::chunked_scanner::status::invalid) broken_ = true;
    if (s == http::chunked_scanner::status::done) end_body();
  }
  if (!closed_) nghttp2_session_resume_data(session_, id_);
  wake_writer();
}

void h2_stream::end_body() noexcept {
  if (phase_ != phase::body) return;
  body_done_ = true;
  phase_ = phase::done;
  if (!closed_) nghttp2_session_resume_data(session_, id_);
  wake_writer();
  read_wake_.notify();
}

ssize_t h2_stream::pull(std::uint8_t* buf, std::size_t length, std::uint32_t* data_flags) {
  const std::size_t n = std::min(length, unsent());
  if (n == 0 && !body_done_) return NGHTTP2_ERR_DEFERRED;
  std::memcpy(buf, out_.data() + out_pos_, n);
  out_pos_ += n;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > 64 * 1024 && out_pos_ * 2 > out_.size()) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  if (body_done_ && unsent() == 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    std::vector<field_line> trailers = response_trailers(trailer_lines_);
    if (!trailers.empty()) {
      std::vector<nghttp2_nv> nv;
      for (auto& [name, value] : trailers)
        nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(name.data()),
                                reinterpret_cast<std::uint8_t*>(value.data()), name.size(), value.size(),
                                NGHTTP2_NV_FLAG_NONE});
      // nghttp2 copies the fields; the trailing HEADERS carries END_STREAM instead of this DATA.
      if (nghttp2_submit_trailer(session_, id_, nv.data(), nv.size()) == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  if (unsent() <= unsent_limit / 2) write_wake_.notify();
  return static_cast<ssize_t>(n);
}

void h2_stream::finish() noexcept {
  if (closed_) return;
  if (phase_ == phase::body && tunnel_) end_body();
  if (phase_ == phase::body && response_.body == http::framing::until_close && !broken_) end_body();
  if (phase_ != phase::done || broken_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
  }
  wake_writer();
}

void h2_stream::wake_writer() noexcept {
  writer_->notify();
}

}  // namespace cproxy::proxy::h2
