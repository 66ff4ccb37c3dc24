// Implementation of route_feed_http.hpp: the URL through boost::urls::parse_uri, the response through
// boost::beast::http::response_parser fed from a buffer, their errors reworded for the log.
#include "route_feed_http.hpp"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "connect/http/head.hpp"

namespace cproxy::control::hub_http {
namespace beast_http = boost::beast::http;
namespace urls = boost::urls;

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

}  // namespace

std::optional<url> parse_url(std::string_view text, std::string& error) {
  const urls::result<urls::url_view> parsed = urls::parse_uri(text);
  if (!parsed) {
    // Boost.URL says where the grammar broke, not why; the usual mistakes get a sentence of their own.
    if (text.find_first_of(" \t\r\n") != std::string_view::npos)
      error = "the hub URL has a space or a control character";
    else
      error = "the hub URL is not a valid URL (" + parsed.error().message() + ")";
    return std::nullopt;
  }
  const urls::url_view& u = *parsed;
  url out;
  if (u.scheme_id() == urls::scheme::https) {
    out.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    error = "the hub URL must start with http:// or https://";
    return std::nullopt;
  }
  // RFC 3986 has a path after an authority start with "/"; Boost.URL 1.81 reads "http://hub:12x" as
  // port 12 and path "x".
  if (!u.encoded_path().empty() && !u.encoded_path().starts_with("/")) {
    error = "the hub URL has an invalid port or text after its host";
    return std::nullopt;
  }
  if (u.has_query() || u.has_fragment()) {
    error = "the hub URL must not have a query or a fragment";
    return std::nullopt;
  }
  if (u.has_userinfo()) {
    error = "the hub URL must not carry a user name or password";
    return std::nullopt;
  }
  switch (u.host_type()) {
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      out.host = u.host_address();
      break;
    case urls::host_type::name:
      // Names as DNS spells them: no percent escapes, no sub-delimiters, which getaddrinfo would take
      // as they are.
      if (u.encoded_host().empty() ||
          !std::all_of(u.encoded_host().begin(), u.encoded_host().end(), is_name_char)) {
        error = "the hub URL needs a host name or address";
        return std::nullopt;
      }
      out.host = std::string(u.encoded_host());
      break;
    default:
      error = "the hub URL needs a host name or address";
      return std::nullopt;
  }
  out.port = out.tls ? 443 : 80;
  if (u.has_port()) {
    const std::string_view digits = u.port();
    unsigned long n = 0;
    if (!digits.empty() && digits.size() <= 5 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      n = std::stoul(std::string(digits));
    if (n < 1 || n > 65535) {
      error = "the hub URL has an invalid port";
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(n);
  }
  out.authority = std::string(u.encoded_host());  // IPv6 keeps its brackets
  if (u.has_port()) out.authority += ":" + std::to_string(out.port);
  std::string_view path = u.encoded_path();
  while (path.ends_with("/")) path.remove_suffix(1);
  out.path = std::string(path);
  return out;
}

struct response_reader::parser {
  beast_http::response_parser<beast_http::string_body> p;
  parser() {
    p.header_limit(static_cast<std::uint32_t>(http::header_limit));
    p.body_limit(max_body);
    p.eager(true);
  }
};

response_reader::response_reader() : parser_(std::make_unique<parser>()) {}
response_reader::~response_reader() = default;

unsigned response_reader::code() const noexcept {
  return parser_->p.is_header_done() ? parser_->p.get().result_int() : 0;
}

const std::string& response_reader::body() const noexcept {
  return parser_->p.get().body();
}

bool response_reader::ends_at_close() const noexcept {
  return phase_ == phase::body && parser_->p.need_eof();
}

response_reader::status response_reader::fail(std::string why) {
  phase_ = phase::failed;
  error_ = std::move(why);
  return status::invalid;
}

// The head is in: what Beast accepts but the hub client does not.
response_reader::status response_reader::check_head() {
  const auto& head = parser_->p.get();
  const unsigned code = head.result_int();
  if (code < 100) return fail("malformed response head: invalid status " + std::to_string(code));
  if (code < 200) return fail("unexpected interim response " + std::to_string(code));
  // Beast reads a response whose last coding is not chunked until the close (RFC 9112 6.3); here only
  // chunked is known, so anything else would be a body read in a coding nobody decodes.
  if (head.find(beast_http::field::transfer_encoding) != head.end() && !parser_->p.chunked())
    return fail("unsupported Transfer-Encoding (only chunked)");
  phase_ = phase::body;
  return status::more;
}

response_reader::status response_reader::feed(std::string_view bytes) {
  if (phase_ == phase::done) return status::done;  // after the end: ignored (the request said close)
  if (phase_ == phase::failed) return status::invalid;
  if (!bytes.empty()) any_bytes_ = true;
  pending_.append(bytes);
  beast_http::response_parser<beast_http::string_body>& p = parser_->p;
  while (!pending_.empty()) {
    // Beast 1.81 asserts (parse_chunk_header: n >= 5) when a last chunk that came right after the head
    // ("0\r\n") is handed back with one byte more; no chunk line decides anything in under 5 bytes, so
    // a shorter rest waits for the next bytes (found by fuzz_hub_answer).
    if (p.is_header_done() && p.chunked() && pending_.size() < 5) break;
    boost::beast::error_code ec;
    const std::size_t used = p.put(boost::asio::const_buffer(pending_.data(), pending_.size()), ec);
    pending_.erase(0, used);
    if (phase_ == phase::head && p.is_header_done() && check_head() == status::invalid)
      return status::invalid;
    if (ec == beast_http::error::need_more) break;
    if (ec == beast_http::error::body_limit) return fail("the response body is over 1 MiB");
    if (ec == beast_http::error::header_limit) return fail("the response head is over 64 KiB");
    if (ec && phase_ == phase::head) return fail("malformed response head: " + ec.message());
    if (ec && p.chunked()) return fail("malformed chunked body");
    if (ec) return fail("malformed response body: " + ec.message());
    if (p.is_done()) break;
    if (used == 0) break;
  }
  if (p.is_done()) {
    phase_ = phase::done;
    return status::done;
  }
  return status::more;
}

response_reader::status response_reader::finish() {
  if (phase_ == phase::done) return status::done;
  if (phase_ == phase::failed) return status::invalid;
  if (phase_ == phase::head)
    return fail(any_bytes_ ? "the connection closed inside the response head"
                           : "the connection closed without a response");
  boost::beast::error_code ec;
  if (pending_.empty()) parser_->p.put_eof(ec);
  if (!pending_.empty() || ec || !parser_->p.is_done())
    return fail("the connection closed before the response body ended");
  phase_ = phase::done;
  return status::done;
}

}  // namespace cproxy::control::hub_http
