// Implementation of connect/http/head.hpp: one pass over the raw bytes (line ends, field syntax,
// characters), Beast's parser for the grammar of the start line, then the framing rules of RFC 9112.
#include "connect/http/head.hpp"

#include <algorithm>
#include <array>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

namespace cproxy::http {
namespace beast_http = boost::beast::http;

namespace {

// RFC 9110 5.6.2 tchar, as a table: the check runs on every byte of every field name.
constexpr std::array<bool, 256> tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> tchars = tchar_table();

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One pass over a head: finds its end and checks what Beast is lenient about or never sees (it is shown
// the start line only): every line ends in CRLF (no bare CR or LF), no obs-fold, a field name of token
// characters right before its colon, no control characters in a value. Empty lines before the start
// line are skipped (RFC 9112 2.2 lets a server skip them). The fields go to `fields`, into the elements
// and strings it already holds where it holds some; `start_line` gets the start line with its CRLF.
parse_result scan(std::string_view bytes, std::string_view& start_line, std::vector<field>& fields) {
  std::size_t pos = 0;
  while (bytes.size() >= pos + 2 && bytes[pos] == '\r' && bytes[pos + 1] == '\n') pos += 2;
  const std::size_t start = pos;
  const std::string_view window = bytes.substr(0, std::min(bytes.size(), start + header_limit));
  start_line = {};
  std::size_t count = 0;
  // Bounded: each pass consumes a line of at least two bytes of the window, or returns.
  for (;;) {
    const std::size_t lf = window.find('\n', pos);
    if (lf == std::string_view::npos) {
      // The last line is not whole yet; a CR in it must still be followed by an LF.
      for (std::size_t cr = window.find('\r', pos); cr != std::string_view::npos;
           cr = window.find('\r', cr + 1))
        if (cr + 1 < bytes.size() && bytes[cr + 1] != '\n') return {parse_status::invalid, 0, "bare CR"};
      return {
          bytes.size() - start >= header_limit ? parse_status::too_large : parse_status::need_more, 0, {}};
    }
    if (lf == pos || bytes[lf - 1] != '\r') return {parse_status::invalid, 0, "bare LF"};
    const std::string_view line = bytes.substr(pos, lf - 1 - pos);
    if (line.find('\r') != std::string_view::npos) return {parse_status::invalid, 0, "bare CR"};
    const std::size_t line_start = pos;
    pos = lf + 1;
    if (start_line.empty()) {
      start_line = bytes.substr(line_start, pos - line_start);
      continue;
    }
    if (line.empty()) break;  // the blank line: the head is whole
    if (line.front() == ' ' || line.front() == '\t') return {parse_status::invalid, 0, "obs-fold"};
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return {parse_status::invalid, 0, "field without a name"};
    const std::string_view name = line.substr(0, colon);
    for (const unsigned char c : name) {
      if (!tchars[c]) {
        return {parse_status::invalid, 0,
                c == ' ' || c == '\t' ? "whitespace before a colon" : "invalid character in a field name"};
      }
    }
    const std::string_view value = line.substr(colon + 1);
    for (const unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return {parse_status::invalid, 0, "control character in a field value"};
    }
    if (count == fields.size()) fields.emplace_back();
    fields[count].name.assign(name);
    fields[count].value.assign(trim(value));
    ++count;
  }
  fields.resize(count);
  return {parse_status::complete, pos, {}};
}

// A comma-separated list of tokens (RFC 9110 5.6.1), empty elements allowed, as the framing and hop-by-hop
// fields carry: anything else in them is refused, as Beast's parser refused it when it saw the fields.
bool is_token_list(std::string_view list) noexcept {
  for (;;) {
    const std::size_t comma = list.find(',');
    for (const unsigned char c : trim(list.substr(0, comma)))
      if (!tchars[c]) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// Content-Length: 1*DIGIT, every occurrence the same value, within 18 digits (no overflow).
bool content_length(const std::vector<field>& fields, bool& present, std::uint64_t& value,
                    std::string& error) {
  present = false;
  for (const field& f : fields) {
    if (!iequals(f.name, "content-length")) continue;
    const std::string_view v = f.value;
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string_view::npos) {
      error = "invalid Content-Length";
      return false;
    }
    std::uint64_t n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    if (present && n != value) {
      error = "differing Content-Length values";
      return false;
    }
    present = true;
    value = n;
  }
  return true;
}

// Transfer-Encoding: the codings of every occurrence, in order; the last must be chunked, and only once.
bool transfer_encoding(const std::vector<field>& fields, bool& present, bool& chunked_last,
                       std::string& error) {
  present = false;
  chunked_last = false;
  int chunked_count = 0;
  for (const field& f : fields) {
    if (!iequals(f.name, "transfer-encoding")) continue;
    // A message chunked is complete: a coding after it, in a field of its own, is refused as Beast's
    // parser refuses it (a response reads it as "until close" otherwise).
    if (chunked_last) {
      error = "Transfer-Encoding after chunked";
      return false;
    }
    present = true;
    if (!is_token_list(f.value)) {
      error = "invalid Transfer-Encoding";
      return false;
    }
    std::string_view list = f.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view coding = trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (coding.empty()) continue;
      chunked_last = iequals(coding, "chunked");
      if (chunked_last) ++chunked_count;
    }
  }
  if (present && chunked_count > 1) {
    error = "chunked applied twice";
    return false;
  }
  return true;
}

// What the two framing fields say; shared by requests and responses.
struct framing_fields {
  bool has_length = false;
  bool has_te = false;
  bool chunked_last = false;
};
bool read_framing_fields(const std::vector<field>& fields, framing_fields& f, std::uint64_t& length,
                         std::string& error) {
  return content_length(fields, f.has_length, length, error) &&
         transfer_encoding(fields, f.has_te, f.chunked_last, error);
}

const field* find(const std::vector<field>& fields, std::string_view name) {
  for (const field& f : fields)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

// Connection and Proxy-Connection name tokens only.
bool connection_lists_valid(const std::vector<field>& fields, std::string& error) {
  for (const field& f : fields) {
    if ((iequals(f.name, "connection") || iequals(f.name, "proxy-connection")) && !is_token_list(f.value)) {
      error = "invalid Connection list";
      return false;
    }
  }
  return true;
}

bool connection_has(const std::vector<field>& fields, std::string_view token) {
  for (const field& f : fields)
    if (iequals(f.name, "connection") && has_token(f.value, token)) return true;
  return false;
}

// Beast's grammar check of the start line. It is shown the start line and a blank line only: scan()
// checked the fields, and Beast's own pass over them cost as much as scan's (a keep-alive profile), as
// would parser<>'s copy of every field into a basic_fields.
template <bool is_request>
class start_line_parser final : public beast_http::basic_parser<is_request> {
 public:
  // Views into this thread's copy of the start line: valid until the thread's next run().
  std::string_view method, target, reason;
  int version = 0;
  int status = 0;

  parse_result run(std::string_view start_line) {
    // Beast parses a head only whole, from one buffer; the thread's buffer keeps that copy malloc-free.
    thread_local std::string head;
    head.assign(start_line);
    head += "\r\n";
    this->header_limit(static_cast<std::uint32_t>(head.size()));
    this->eager(false);
    boost::beast::error_code ec;
    this->put(boost::asio::buffer(head.data(), head.size()), ec);
    if (ec && ec != beast_http::error::need_more) return {parse_status::invalid, 0, ec.message()};
    if (!this->is_header_done()) return {parse_status::invalid, 0, "incomplete head"};
    return {parse_status::complete, 0, {}};
  }

 private:
  using error_code = boost::beast::error_code;
  void on_request_impl(beast_http::verb, boost::beast::string_view method_text,
                       boost::beast::string_view target_text, int v, error_code&) override {
    method = {method_text.data(), method_text.size()};
    target = {target_text.data(), target_text.size()};
    version = v;
  }
  void on_response_impl(int code, boost::beast::string_view reason_text, int v, error_code&) override {
    status = code;
    reason = {reason_text.data(), reason_text.size()};
    version = v;
  }
  void on_field_impl(beast_http::field, boost::beast::string_view, boost::beast::string_view,
                     error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, error_code&) override {
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

// A head as a fresh one, but its strings and field vector keep their storage for this parse. The
// defaults are the struct's (head_test checks that a used head parses as a fresh one does).
void reset(request_head& h) {
  h.method.clear();
  h.target.clear();
  h.version = 11;
  h.host.clear();
  h.authority.clear();
  h.absolute_form = false;
  h.body = framing::none;
  h.content_length = 0;
  h.keep_alive = true;
  h.upgrade_websocket = false;
  h.expect_continue = false;
}

void reset(response_head& h) {
  h.status = 0;
  h.reason.clear();
  h.version = 11;
  h.body = framing::none;
  h.content_length = 0;
  h.keep_alive = true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x |= 0x20;
    if (y >= 'A' && y <= 'Z') y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

namespace {

parse_result parse_request_into(std::string_view bytes, request_head& out) {
  std::string_view start_line;
  const parse_result r = scan(bytes, start_line, out.fields);
  if (r.status != parse_status::complete) return r;

  start_line_parser<true> parser;
  if (const parse_result g = parser.run(start_line); g.status != parse_status::complete) return g;
  reset(out);
  out.method.assign(parser.method);
  out.target.assign(parser.target);
  out.version = static_cast<unsigned>(parser.version);
  if (out.version != 10 && out.version != 11) return {parse_status::invalid, 0, "unsupported HTTP version"};

  std::string error;
  framing_fields framing_of;
  if (!read_framing_fields(out.fields, framing_of, out.content_length, error) ||
      !connection_lists_valid(out.fields, error))
    return {parse_status::invalid, 0, error};
  if (framing_of.has_te) {
    if (out.version == 10) return {parse_status::invalid, 0, "Transfer-Encoding in HTTP/1.0"};
    if (framing_of.has_length) return {parse_status::invalid, 0, "both Content-Length and Transfer-Encoding"};
    if (!framing_of.chunked_last)
      return {parse_status::invalid, 0, "Transfer-Encoding not ending in chunked"};
    out.body = framing::chunked;
  } else if (framing_of.has_length && out.content_length > 0) {
    out.body = framing::length;
  }

  int hosts = 0;
  for (const field& f : out.fields) {
    if (iequals(f.name, "host")) {
      ++hosts;
      out.host = f.value;
    }
  }
  if (hosts > 1) return {parse_status::invalid, 0, "two Host fields"};
  if (out.version == 11 && (hosts == 0 || out.host.empty())) return {parse_status::invalid, 0, "no Host"};

  if (out.is_connect()) {
    out.authority = out.target;
  } else if (!out.target.empty() && out.target.front() != '/' && out.target != "*") {
    const auto uri = boost::urls::parse_absolute_uri(out.target);
    if (!uri || !uri->has_authority()) return {parse_status::invalid, 0, "invalid request target"};
    if (uri->has_userinfo()) return {parse_status::invalid, 0, "userinfo in the request target"};
    // Boost.URL 1.81 takes "http://h:at/x" as authority "h:" and path "at/x": a port is digits and the
    // path after an authority starts with "/" (RFC 3986 3.2.3, 3.3).
    const std::string_view port = uri->port();
    const std::string_view path = uri->encoded_path();
    if (port.find_first_not_of("0123456789") != std::string_view::npos ||
        (!path.empty() && path.front() != '/'))
      return {parse_status::invalid, 0, "invalid port or path in the request target"};
    out.authority.assign(std::string_view(uri->encoded_authority()));
    out.absolute_form = true;
    if (hosts == 1 && !iequals(out.authority, out.host))
      return {parse_status::invalid, 0, "target authority differs from Host"};
  }

  const bool close = connection_has(out.fields, "close");
  out.keep_alive = out.version == 11 ? !close : (!close && connection_has(out.fields, "keep-alive"));
  if (const field* upgrade = find(out.fields, "upgrade"))
    out.upgrade_websocket = out.method == "GET" && has_token(upgrade->value, "websocket") &&
                            connection_has(out.fields, "upgrade");
  if (const field* expect = find(out.fields, "expect"))
    out.expect_continue = iequals(expect->value, "100-continue");
  return r;
}

parse_result parse_response_into(std::string_view bytes, std::string_view request_method,
                                 response_head& out) {
  std::string_view start_line;
  const parse_result r = scan(bytes, start_line, out.fields);
  if (r.status != parse_status::complete) return r;
  start_line_parser<false> parser;
  if (request_method == "HEAD") parser.skip(true);
  if (const parse_result g = parser.run(start_line); g.status != parse_status::complete) return g;
  reset(out);
  out.status = static_cast<unsigned>(parser.status);
  // Beast reads any three digits ("002" as 2); RFC 9110 section 15 allows 100 to 599 only.
  if (out.status < 100 || out.status > 599) return {parse_status::invalid, 0, "status code outside 100-599"};
  out.reason.assign(parser.reason);
  out.version = static_cast<unsigned>(parser.version);
  if (out.version != 10 && out.version != 11) return {parse_status::invalid, 0, "unsupported HTTP version"};

  std::string error;
  framing_fields framing_of;
  if (!read_framing_fields(out.fields, framing_of, out.content_length, error) ||
      !connection_lists_valid(out.fields, error))
    return {parse_status::invalid, 0, error};
  if (framing_of.has_te && framing_of.has_length)
    return {parse_status::invalid, 0, "both Content-Length and Transfer-Encoding"};

  const bool bodiless = request_method == "HEAD" || out.status / 100 == 1 || out.status == 204 ||
                        out.status == 304 || (request_method == "CONNECT" && out.status / 100 == 2);
  if (bodiless) {
    out.body = framing::none;
  } else if (framing_of.has_te) {
    out.body = framing_of.chunked_last ? framing::chunked : framing::until_close;
  } else if (framing_of.has_length) {
    out.body = out.content_length > 0 ? framing::length : framing::none;
  } else {
    out.body = framing::until_close;
  }
  const bool close = connection_has(out.fields, "close");
  out.keep_alive = out.body != framing::until_close &&
                   (out.version == 11 ? !close : (!close && connection_has(out.fields, "keep-alive")));
  return r;
}

// A head that did not parse is emptied: nothing of it, nor of the head the storage held before (another
// client's, perhaps), is read by mistake.
template <class Head>
parse_result emptied_unless_complete(parse_result r, Head& out) {
  if (r.status != parse_status::complete) {
    reset(out);
    out.fields.clear();
  }
  return r;
}

}  // namespace

parse_result parse_request(std::string_view bytes, request_head& out) {
  return emptied_unless_complete(parse_request_into(bytes, out), out);
}

parse_result parse_response(std::string_view bytes, std::string_view request_method, response_head& out) {
  return emptied_unless_complete(parse_response_into(bytes, request_method, out), out);
}

}  // namespace cproxy::http
