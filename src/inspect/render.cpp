// Implementation of render.hpp with Boost.JSON; the shapes are product.md's (Inspector) and HAR 1.2's.
#include "connect/inspect/render.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace cproxy::inspect {
namespace {

namespace json = boost::json;

// A duration in milliseconds as a plain decimal, to the microsecond it was measured in ("4.2", "12",
// "0.015"): Boost.JSON would write a double as "4.2E0", which a reader of the JSON takes for noise.
void write_decimal(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.3f", d);
  // snprintf returns the length it wanted: past 1e60 ms that is more than `buf` holds.
  std::string_view text(buf, n > 0 ? std::min(static_cast<std::size_t>(n), sizeof buf - 1) : 0);
  while (text.ends_with('0')) text.remove_suffix(1);
  if (text.ends_with('.')) text.remove_suffix(1);
  if (text == "-0") text = "0";
  out += text;
}

// json::serialize, but with doubles as write_decimal writes them; strings are escaped by Boost.JSON.
void write_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      return;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return;
    case json::kind::double_:
      write_decimal(out, v.get_double());
      return;
    case json::kind::string:
      out += json::serialize(v.get_string());
      return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const json::key_value_pair& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(kv.key());
        out += ':';
        write_json(out, kv.value());
      }
      out += '}';
      return;
    }
  }
}

std::string text_of(const json::value& v) {
  std::string out;
  write_json(out, v);
  return out;
}

json::value nullable_ms(double ms) {
  if (ms < 0) return nullptr;
  return ms;
}

json::object summary(const record& r) {
  json::object o;
  o["id"] = r.id;
  o["time"] = iso_time(r.time);
  o["route"] = r.route;
  o["method"] = r.method;
  o["host"] = r.host;
  o["path"] = r.path;
  o["protocol"] = r.protocol;
  o["status"] = r.status;
  o["durationMs"] = r.duration_ms;
  o["requestBytes"] = r.request_bytes;
  o["responseBytes"] = r.response_bytes;
  if (r.error.empty())
    o["error"] = nullptr;
  else
    o["error"] = r.error;
  // Beyond the contract's list shape: the page draws each row's timing bar from it.
  json::object t;
  t["connectMs"] = nullable_ms(r.connect_ms);
  t["firstByteMs"] = nullable_ms(r.first_byte_ms);
  t["totalMs"] = r.duration_ms;
  o["timings"] = std::move(t);
  return o;
}

json::array headers_array(const header_list& h) {
  json::array a;
  for (const auto& [name, value] : h) a.push_back(json::array{json::string(name), json::string(value)});
  return a;
}

json::object message(const header_list& h, const captured_body& b) {
  json::object o;
  o["headers"] = headers_array(h);
  if (is_utf8(b.bytes)) {
    o["body"] = b.bytes;
  } else {
    o["body"] = base64(b.bytes);
    o["bodyEncoding"] = "base64";
  }
  o["bodyTruncated"] = b.truncated;
  o["bodySize"] = b.size;
  return o;
}

bool redacted_name(std::string_view n) {
  auto ieq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  };
  return ieq(n, "authorization") || ieq(n, "cookie") || ieq(n, "set-cookie") || ieq(n, "proxy-authorization");
}

json::array har_headers(const header_list& h, bool redact) {
  json::array a;
  for (const auto& [name, value] : h) {
    json::object e;
    e["name"] = name;
    e["value"] = redact && redacted_name(name) ? std::string("[redacted]") : value;
    a.push_back(std::move(e));
  }
  return a;
}

std::string header_value(const header_list& h, std::string_view name) {
  for (const auto& [n, v] : h)
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  return {};
}

json::object har_entry(const record& r, bool redact) {
  const header_list request_headers = r.request_headers();
  const header_list response_headers = r.response_headers();
  json::object req;
  req["method"] = r.method;
  req["url"] = (r.path.rfind("http", 0) == 0 ? r.path : "http://" + r.host + r.path);
  req["httpVersion"] = r.protocol == "h2" ? "HTTP/2" : "HTTP/1.1";
  req["cookies"] = json::array{};
  req["headers"] = har_headers(request_headers, redact);
  json::array query;
  const std::size_t q = r.path.find('?');
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(r.path).substr(q + 1);
    while (!rest.empty()) {
      const std::size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const std::size_t eq = pair.find('=');
      json::object p;
      p["name"] = pair.substr(0, eq);
      p["value"] = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      query.push_back(std::move(p));
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  req["queryString"] = std::move(query);
  req["headersSize"] = -1;
  req["bodySize"] = static_cast<std::int64_t>(r.request_body.size);
  if (r.request_body.size > 0) {
    json::object post;
    std::string type = header_value(request_headers, "content-type");
    post["mimeType"] = type.empty() ? std::string("application/octet-stream") : type;
    post["text"] = is_utf8(r.request_body.bytes) ? r.request_body.bytes : base64(r.request_body.bytes);
    req["postData"] = std::move(post);
  }

  json::object resp;
  resp["status"] = r.status;
  resp["statusText"] = "";
  resp["httpVersion"] = "HTTP/1.1";
  resp["cookies"] = json::array{};
  resp["headers"] = har_headers(response_headers, redact);
  json::object content;
  content["size"] = static_cast<std::int64_t>(r.response_body.size);
  const std::string type = header_value(response_headers, "content-type");
  content["mimeType"] = type.empty() ? std::string("application/octet-stream") : type;
  if (is_utf8(r.response_body.bytes)) {
    content["text"] = r.response_body.bytes;
  } else {
    content["text"] = base64(r.response_body.bytes);
    content["encoding"] = "base64";
  }
  resp["content"] = std::move(content);
  resp["redirectURL"] = header_value(response_headers, "location");
  resp["headersSize"] = -1;
  resp["bodySize"] = static_cast<std::int64_t>(r.response_body.size);

  // HAR timings: -1 for a phase that did not happen; send and receive are not measured apart.
  const double connect = r.connect_ms < 0 ? -1.0 : r.connect_ms;
  const double wait = r.first_byte_ms < 0 ? 0.0 : r.first_byte_ms - std::max(0.0, connect);
  const double receive = r.first_byte_ms < 0 ? r.duration_ms : r.duration_ms - r.first_byte_ms;
  json::object timings;
  timings["blocked"] = -1;
  timings["dns"] = -1;
  timings["connect"] = connect;
  timings["send"] = 0;
  timings["wait"] = std::max(0.0, wait);
  timings["receive"] = std::max(0.0, receive);
  timings["ssl"] = -1;

  json::object e;
  e["startedDateTime"] = iso_time(r.time);
  e["time"] = r.duration_ms;
  e["request"] = std::move(req);
  e["response"] = std::move(resp);
  e["cache"] = json::object{};
  e["timings"] = std::move(timings);
  e["_route"] = r.route;
  e["_id"] = r.id;
  return e;
}

}  // namespace

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

bool is_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80) {
      if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0 && c >= 0xC2)
      n = 1;
    else if ((c & 0xF0) == 0xE0)
      n = 2;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
      n = 3;
    else
      return false;
    for (std::size_t k = 1; k <= n; ++k)
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::string base64(std::string_view s) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(s[i]) << 16 | static_cast<unsigned char>(s[i + 1]) << 8 |
                       static_cast<unsigned char>(s[i + 2]);
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += table[v >> 6 & 63];
    out += table[v & 63];
  }
  if (i < s.size()) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += i + 1 < s.size() ? table[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string summary_json(const record& r) {
  return text_of(summary(r));
}

std::string list_json(const std::vector<record_ptr>& records) {
  json::array a;
  for (const record_ptr& r : records) a.push_back(summary(*r));
  json::object o;
  o["requests"] = std::move(a);
  return text_of(o);
}

std::string detail_json(const record& r) {
  json::object o = summary(r);
  o["request"] = message(r.request_headers(), r.request_body);
  o["response"] = message(r.response_headers(), r.response_body);
  return text_of(o);
}

std::string har_json(const std::vector<record_ptr>& records, bool redact, const std::string& version) {
  json::array entries;
  // HAR lists entries oldest first.
  for (auto it = records.rbegin(); it != records.rend(); ++it) entries.push_back(har_entry(**it, redact));
  json::object creator;
  creator["name"] = "connect-proxy";
  creator["version"] = version;
  json::object log;
  log["version"] = "1.2";
  log["creator"] = std::move(creator);
  log["pages"] = json::array{};
  log["entries"] = std::move(entries);
  json::object o;
  o["log"] = std::move(log);
  return text_of(o);
}

}  // namespace cproxy::inspect
