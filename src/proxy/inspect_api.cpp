// Implementation of inspect_api.hpp. Replay runs the captured request through the same front-end
// (serve_client) over an in-memory stream, so it is a new exchange like any other, on HTTP and HTTPS.
#include "inspect_api.hpp"

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cstring>

#include "connect/inspect/render.hpp"
#include "connect/io/timer.hpp"
#include "head_reader.hpp"
#include "responses.hpp"

namespace cproxy::proxy {
namespace {

namespace json = boost::json;

constexpr std::size_t max_api_body = 64 * 1024;
constexpr io::duration event_poll{100};
constexpr int keepalive_polls = 150;  // a comment line every 15 s finds a client that left

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

const http::field* find_field(const http::request_head& head, std::string_view name) {
  for (const http::field& f : head.fields)
    if (http::iequals(f.name, name)) return &f;
  return nullptr;
}

std::string json_error(std::string_view error, std::string_view message) {
  json::object o;
  o["error"] = error;
  o["message"] = message;
  return json::serialize(o);
}

// The query parameter `name` of `query` ("a=1&b=2"), undecoded; nullopt when absent.
std::optional<std::string_view> param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The Origin values of the own page: its scheme with localhost, 127.0.0.1 or [::1] and its port.
bool own_origin(const client_side& c, std::string_view origin) {
  const std::string scheme = c.env->options->tls ? "https://" : "http://";
  const std::string port = ":" + std::to_string(c.env->port);
  for (const char* host : {"localhost", "127.0.0.1", "[::1]"})
    if (origin == scheme + host + port) return true;
  return false;
}

// The safety rules: why this request is refused, or "" when it may go on.
std::string refusal(const client_side& c, const http::request_head& head) {
  if (const http::field* origin = find_field(head, "origin"); origin && !own_origin(c, origin->value))
    return "Requests to /_connect/ from another origin are refused.";
  if (const http::field* site = find_field(head, "sec-fetch-site");
      site && http::iequals(site->value, "cross-site"))
    return "Cross-site requests to /_connect/ are refused.";
  if (head.method == "POST" || head.method == "DELETE") {
    const http::field* type = find_field(head, "content-type");
    const std::string_view t = type ? std::string_view(type->value) : std::string_view();
    const std::string_view media = t.substr(0, t.find(';'));
    if (!http::iequals(media, "application/json"))
      return "POST and DELETE to /_connect/ need Content-Type: application/json.";
  }
  return {};
}

// A request the proxy sends itself: its bytes are read from a string, what is written back counted and
// dropped. Completes at once (a replay is driven to its end by the worker that runs it).
class replay_stream final : public io::stream {
 public:
  explicit replay_stream(std::string request) : in_(std::move(request)) {}
  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration) override {
    const std::size_t n = std::min(buf.size(), in_.size() - at_);
    std::memcpy(buf.data(), in_.data() + at_, n);
    at_ += n;
    return done(io::io_result{{}, n});
  }
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration) override {
    return done(io::io_result{{}, buf.size()});
  }
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration) override {
    std::size_t n = 0;
    for (const io::const_buffer& b : bufs) n += b.size;
    return done(io::io_result{{}, n});
  }
  void cancel() noexcept override {}
  void shutdown_send() noexcept override {}
  io::socket* plain_socket() noexcept override { return nullptr; }

 private:
  static coro::task<io::io_result> done(io::io_result r) { co_return r; }
  std::string in_;
  std::size_t at_ = 0;
};

bool added_by_proxy(std::string_view name) {
  for (const char* n : {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                        "x-private-connect-proxy", "x-private-connect-route", "forwarded", "connection"})
    if (http::iequals(name, n)) return true;
  return false;
}

// The captured request as a client would send it: the proxy adds its own headers again on the way. A
// chunked body was kept as its payload, so it goes with a Content-Length in the place of the chunking.
std::string replay_request(const inspect::record& r, std::string_view token) {
  std::string out = r.method + " " + r.path + " HTTP/1.1\r\n";
  const std::string length = "Content-Length: " + std::to_string(r.request_body.bytes.size()) + "\r\n";
  bool framed = false;
  for (const auto& [name, value] : r.request_headers()) {
    if (added_by_proxy(name)) continue;
    if (http::iequals(name, "transfer-encoding")) {
      out += length;
      framed = true;
      continue;
    }
    framed = framed || http::iequals(name, "content-length");
    out += name + ": " + value + "\r\n";
  }
  if (!framed && !r.request_body.bytes.empty()) out += length;
  out += "x-private-connect-replay: " + std::string(token) + "\r\n";
  out += "Connection: close, x-private-connect-replay\r\n\r\n";
  out += r.request_body.bytes;
  return out;
}

std::string client_ip_of(const inspect::record& r, const client_side& c) {
  for (const auto& [name, value] : r.request_headers())
    if (http::iequals(name, "x-forwarded-for")) return value;
  return c.ip;
}

std::atomic<std::uint64_t> replay_tokens{0};

// Reads and drops a small request body (API requests carry at most a JSON object).
coro::task<bool> drop_body(client_side* c, const http::request_head* head) {
  if (head->body == http::framing::none) co_return true;
  if (head->body != http::framing::length || head->content_length > max_api_body) co_return false;
  while (c->in.size() < head->content_length) {
    const io::io_result r = co_await read_more(c->stream, &c->in, c->env->options->timeouts.header);
    if (r.ec || r.bytes == 0) co_return false;
  }
  c->in.consume(static_cast<std::size_t>(head->content_length));
  co_return true;
}

coro::task<exchange_end> serve_events(client_side* c, exchange* ex) {
  inspect::store& st = *c->env->inspector;
  std::vector<std::uint64_t> cursor;
  st.since(&cursor);  // from now on: each exchange that finishes after this point, once
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
      "x-private-connect-proxy: 1\r\nConnection: close\r\n\r\n: connected\n\n";
  ex->status = 200;
  const io::duration idle = c->env->options->timeouts.idle;
  io::io_result sent = co_await c->stream->write_all(bytes_of(head), idle);
  if (sent.ec) co_return exchange_end::close;
  ex->response_bytes = head.size();
  io::timer tick(*c->w->ctx);
  for (int quiet = 0; !c->w->draining;) {
    const std::error_code waited = co_await tick.wait(event_poll);
    if (waited && !io::is_timeout(waited)) break;
    std::string events;
    for (const inspect::record_ptr& r : st.since(&cursor))
      events += "data: " + inspect::summary_json(*r) + "\n\n";
    if (events.empty() && ++quiet < keepalive_polls) continue;
    if (events.empty()) events = ": keep-alive\n\n";
    quiet = 0;
    sent = co_await c->stream->write_all(bytes_of(events), idle);
    if (sent.ec) break;
    ex->response_bytes += events.size();
  }
  co_return exchange_end::close;
}

struct api_answer {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string extra;  // more header lines
};

api_answer answer(unsigned status, std::string body) {
  api_answer a;
  a.status = status;
  a.body = std::move(body);
  return a;
}

coro::task<api_answer> replay(client_side* c, std::uint64_t id) {
  const inspect::record_ptr r = c->env->inspector->find(id);
  if (!r) co_return answer(404, json_error("Not Found", "No request " + std::to_string(id) + " is kept."));
  if (r->request_body.truncated)
    co_return answer(409, json_error("Conflict",
                                     "The request body was larger than the inspector keeps (bodyBytes), "
                                     "so it cannot be replayed."));
  if (r->protocol == "connect" || r->protocol == "websocket")
    co_return answer(409, json_error("Conflict", "A tunnel cannot be replayed."));
  const std::string token = std::to_string(replay_tokens.fetch_add(1) + 1) + "-" + std::to_string(id);
  replay_stream stream(replay_request(*r, token));
  std::string client_ip = client_ip_of(*r, *c);
  co_await serve_client(&stream, std::move(client_ip), c->secure, c->env, c->w);
  const inspect::record_ptr made = c->env->inspector->find_replay(token);
  if (!made) co_return answer(502, json_error("Bad Gateway", "The replay did not complete."));
  json::object o;
  o["id"] = made->id;
  co_return answer(200, json::serialize(o));
}

}  // namespace

bool is_inspector_target(std::string_view target) noexcept {
  return target.rfind("/_connect/", 0) == 0 || target == "/_connect";
}

coro::task<exchange_end> serve_inspector(client_side* c, exchange* ex) {
  const http::request_head& head = *ex->request;
  const bool keep = head.keep_alive && !c->w->draining;
  const std::string_view target = head.target;
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  api_answer a;
  const bool body_ok = co_await drop_body(c, &head);
  if (!body_ok) {
    a = answer(413, json_error("Payload Too Large", "Requests to /_connect/ carry at most 64 KiB."));
    std::string out = inspector_response(a.status, a.content_type, a.body, false);
    co_return co_await send_own_answer(c, ex, a.status, std::move(out), false);
  }
  if (const std::string why = refusal(*c, head); !why.empty()) {
    a = answer(403, json_error("Forbidden", why));
  } else if (c->env->inspector == nullptr) {
    a = answer(404, json_error("Not Found", "The request inspector is off (\"inspect\": false)."));
  } else if (path == "/_connect/events" && head.method == "GET") {
    co_return co_await serve_events(c, ex);
  } else if (path == "/_connect/requests" && head.method == "GET") {
    inspect::filter f;
    if (auto route = param(query, "route")) f.route = std::string(*route);
    if (auto status = param(query, "status")) {
      if (status->size() == 3 && (*status)[1] == 'x' && (*status)[2] == 'x' && (*status)[0] >= '1' &&
          (*status)[0] <= '5')
        f.status_class = static_cast<unsigned>((*status)[0] - '0');
      else if (auto n = number(*status))
        f.status = static_cast<unsigned>(*n);
    }
    if (auto limit = param(query, "limit"))
      if (auto n = number(*limit)) f.limit = static_cast<std::size_t>(*n);
    a.body = inspect::list_json(c->env->inspector->list(f));
  } else if (path == "/_connect/requests" && head.method == "DELETE") {
    c->env->inspector->clear();
    a.body = "{\"cleared\":true}";
  } else if (path == "/_connect/requests.har" && head.method == "GET") {
    const bool redact = param(query, "redact") != std::optional<std::string_view>("0");
    a.body = inspect::har_json(c->env->inspector->list({}), redact, c->env->options->version);
    a.extra = "Content-Disposition: attachment; filename=\"connect-proxy.har\"\r\n";
  } else if (path.rfind("/_connect/requests/", 0) == 0) {
    std::string_view rest = path.substr(std::string_view("/_connect/requests/").size());
    const bool is_replay = rest.ends_with("/replay");
    if (is_replay) rest.remove_suffix(std::string_view("/replay").size());
    const std::optional<std::uint64_t> id = number(rest);
    if (!id) {
      a = answer(404, json_error("Not Found", "No such request."));
    } else if (is_replay && head.method == "POST") {
      a = co_await replay(c, *id);
    } else if (!is_replay && head.method == "GET") {
      const inspect::record_ptr r = c->env->inspector->find(*id);
      if (r)
        a.body = inspect::detail_json(*r);
      else
        a = answer(404, json_error("Not Found", "No request " + std::to_string(*id) + " is kept."));
    } else {
      a = answer(405, json_error("Method Not Allowed", "Not allowed on " + std::string(path) + "."));
    }
  } else {
    a = answer(404, json_error("Not Found", "No inspector endpoint " + std::string(path) + "."));
  }
  std::string out =
      inspector_response(a.status, a.content_type, a.body, keep, a.extra, head.method == "HEAD");
  co_return co_await send_own_answer(c, ex, a.status, std::move(out), keep);
}

}  // namespace cproxy::proxy
