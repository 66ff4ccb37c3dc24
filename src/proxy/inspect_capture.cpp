// Implementation of inspect_capture.hpp: what each hook copies into the exchange's record, and the
// record's summary (route, protocol, timings, the proxy's own error) filled in once the exchange ended.
#include "inspect_capture.hpp"

#include "connect/inspect/store.hpp"

namespace cproxy::proxy {
namespace {

// Records kept for reuse per worker: about 1 KiB each with their buffers (20 KiB at most, see reuse()).
constexpr std::size_t max_spare_records = 64;

double ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(to - from).count()) /
         1000.0;
}

// The proxy's own answer in a word, as the list shows it ("error"); "" when the upstream answered.
std::string error_text(const exchange& ex) {
  if (ex.failed) {
    switch (ex.failed->kind) {
      case failure_kind::bad_request:
        return "bad request";
      case failure_kind::head_too_large:
        return "request head too large";
      case failure_kind::body_too_large:
        return "request body too large";
      case failure_kind::client_gone:
        return "client gone";
      case failure_kind::refused:
        return "upstream refused";
      case failure_kind::connect_timeout:
        return "upstream connect timeout";
      case failure_kind::response_timeout:
        return "upstream response timeout";
      case failure_kind::upstream_closed:
        return "upstream closed";
      case failure_kind::upstream_stalled:
        return "upstream stalled";
      case failure_kind::invalid_response:
        return "invalid upstream response";
      case failure_kind::unreachable:
        return "upstream unreachable";
      case failure_kind::route_gone:
        return "service not found";
    }
  }
  if (ex.route == nullptr) {
    switch (ex.status) {
      case 404:
        return "service not found";
      case 421:
        return "misdirected request";
      case 413:
        return "request body too large";
      case 508:
        return "loop detected";
      case 308:
        return "redirect to https";
      default:
        break;
    }
  }
  return {};
}

// "Name: value\r\n" for each field, into `out`'s buffer (a reused record's, most of the time).
void set_field_lines(std::string* out, const std::vector<http::field>& fields) {
  std::size_t n = 0;
  for (const http::field& f : fields) n += f.name.size() + f.value.size() + 4;
  out->clear();
  out->reserve(n);
  for (const http::field& f : fields) {
    *out += f.name;
    *out += ": ";
    *out += f.value;
    *out += "\r\n";
  }
}

}  // namespace

void begin_capture(const client_side& c, exchange* ex) {
  if (c.env->inspector == nullptr) return;
  std::vector<std::shared_ptr<inspect::record>>& spares = c.w->spare_records;
  if (spares.empty()) {
    ex->capture = std::make_shared<inspect::record>();
  } else {
    ex->capture = std::move(spares.back());
    spares.pop_back();
  }
  ex->capture_limit = c.env->inspector->settings().body_bytes;
}

void capture_forwarded_head(exchange* ex, std::string_view forwarded) {
  if (ex->capture) ex->capture->request_head.assign(inspect::field_lines_of(forwarded));
}

void capture_response_head(exchange* ex, const http::response_head& resp) {
  if (!ex->capture) return;
  set_field_lines(&ex->capture->response_head, resp.fields);
}

void capture_own_answer(exchange* ex, std::string_view answer) {
  if (!ex->capture) return;
  const std::size_t end = answer.find("\r\n\r\n");
  if (end == std::string_view::npos) return;
  ex->capture->response_head.assign(inspect::field_lines_of(answer.substr(0, end + 4)));
  inspect::captured_body fresh;
  fresh.add(answer.substr(end + 4), ex->capture_limit);
  ex->capture->response_body = std::move(fresh);
}

void end_capture(const client_side& c, exchange* ex) {
  if (!ex->capture) return;
  inspect::record& r = *ex->capture;
  const http::request_head& head = *ex->request;
  if (ex->route)
    r.route = ex->route->name;
  else
    r.route.clear();
  r.method = head.method;
  r.host = head.is_connect() || head.absolute_form ? head.authority : head.host;
  r.path = head.target;
  if (head.is_connect())
    r.protocol = "connect";
  else if (ex->status == 101 && head.upgrade_websocket)
    r.protocol = "websocket";
  else
    r.protocol = ex->protocol;
  r.status = ex->status;
  const exchange_timings& t = ex->times;
  r.duration_ms = ms_between(t.started, t.finished);
  r.time = std::chrono::system_clock::now() -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(t.finished - t.started);
  if (t.connected != exchange_timings::time_point{}) r.connect_ms = ms_between(t.started, t.connected);
  if (t.first_byte != exchange_timings::time_point{}) r.first_byte_ms = ms_between(t.started, t.first_byte);
  r.request_bytes = ex->request_body_bytes;
  r.response_bytes = ex->response_bytes;
  r.error = error_text(*ex);
  if (r.request_head.empty()) set_field_lines(&r.request_head, head.fields);  // it went nowhere: as received
  for (const http::field& f : head.fields)
    if (http::iequals(f.name, "x-private-connect-replay")) r.replay_token = f.value;
  std::shared_ptr<inspect::record> reusable;
  c.env->inspector->add(c.w->index, std::move(ex->capture), &reusable);
  if (reusable && c.w->spare_records.size() < max_spare_records)
    c.w->spare_records.push_back(std::move(reusable));
}

void tap_stream::take(std::string_view bytes) {
  if (!chunked_) {
    body_->add(bytes, limit_);
    return;
  }
  std::size_t used = 0;
  payload_.clear();
  scanner_.feed(bytes, used, &payload_);
  body_->add(payload_, limit_);
}

coro::task<io::io_result> tap_stream::write_all(std::span<const std::byte> buf, io::duration timeout) {
  take(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
  return inner_->write_all(buf, timeout);
}

coro::task<io::io_result> tap_stream::write_all(std::span<const io::const_buffer> bufs,
                                                io::duration timeout) {
  for (const io::const_buffer& b : bufs) take(std::string_view(static_cast<const char*>(b.data), b.size));
  return inner_->write_all(bufs, timeout);
}

io::stream* tap_body(exchange* ex, bool response, io::stream* to, http::framing framing, std::uint64_t length,
                     std::optional<tap_stream>* holder) {
  if (!ex->capture || framing == http::framing::none) return to;
  inspect::captured_body* body = response ? &ex->capture->response_body : &ex->capture->request_body;
  if (framing == http::framing::length && body->size + length > ex->capture_limit) {
    // Too big to keep: its size only, and the relay may splice.
    body->truncated = true;
    body->bytes.clear();
    body->size += length;
    return to;
  }
  if (framing == http::framing::length) body->bytes.reserve(body->bytes.size() + length);
  holder->emplace(to, body, ex->capture_limit, framing == http::framing::chunked);
  return &**holder;
}

}  // namespace cproxy::proxy
