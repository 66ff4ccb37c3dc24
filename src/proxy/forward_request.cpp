// The forward_request stage: the rewritten request head to the upstream, then the body by its framing
// (a chunked body checked as it passes, --max-body counted).
#include "inspect_capture.hpp"
#include "relay.hpp"
#include "stages.hpp"

namespace cproxy::proxy {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Who a body relay's error belongs to: the client's side (a bad or oversized body, or a client that
// left) or the upstream's (it stopped reading).
failure body_failure(const relay_outcome& b) {
  if (b.read_error == std::errc::file_too_large) return downstream_failure(failure_kind::body_too_large);
  if (b.read_error == std::errc::bad_message)
    return downstream_failure(failure_kind::bad_request, "invalid chunked body");
  if (b.read_error) return downstream_failure(failure_kind::client_gone, b.read_error.message());
  return upstream_failure(failure_kind::upstream_stalled, b.write_error.message());
}

}  // namespace

coro::task<std::optional<failure>> send_request_body(client_side* c, exchange* ex, io::stream* up) {
  const http::request_head& head = *ex->request;
  const io::duration idle = c->env->options->timeouts.idle;
  relay_outcome b;
  std::optional<tap_stream> tap;
  io::stream* to = tap_body(ex, false, up, head.body, head.content_length, &tap);
  if (head.body == http::framing::length) {
    b = co_await relay_length(c->stream, &c->in, to, head.content_length, idle, c->w->splice);
  } else if (head.body == http::framing::chunked) {
    b = co_await relay_chunked(c->stream, &c->in, to, idle, false, c->env->options->max_body);
  }
  ex->request_body_bytes += b.bytes;
  if (!b.ok()) co_return body_failure(b);
  co_return std::nullopt;
}

coro::task<std::optional<failure>> forward_request(client_side* c, exchange* ex, io::stream* up,
                                                   const http::hop_trail* trail, bool* body_sent) {
  const http::request_head& head = *ex->request;
  const http::forward_context fwd{c->ip, c->env->port, c->secure ? "https" : "http", ex->route->name};
  std::string& forwarded = ex->heads->upstream_head;
  http::forward_request_head(head, fwd, *trail, forwarded);
  capture_forwarded_head(ex, forwarded);
  const io::io_result sent = co_await up->write_all(bytes_of(forwarded), c->env->options->timeouts.idle);
  if (sent.ec) {
    failure f = upstream_failure(failure_kind::upstream_closed, sent.ec.message());
    // A pooled connection the upstream had closed: nothing of the request reached it.
    f.retryable = ex->reused_upstream && head.body == http::framing::none;
    co_return f;
  }
  *body_sent = head.body == http::framing::none;
  if (*body_sent || head.expect_continue) co_return std::nullopt;  // the body waits for the upstream's 100
  std::optional<failure> body = co_await send_request_body(c, ex, up);
  *body_sent = !body;
  co_return body;
}

}  // namespace cproxy::proxy
