// The relay_response stage: the upstream's response head (1xx passed on, the body of an Expect:
// 100-continue request sent on the go-ahead), then the body by its framing, streamed as it arrives; a
// 101 for a WebSocket upgrade becomes a tunnel.
#include <algorithm>

#include "connect/coro/scope.hpp"
#include "connect/io/loop_clock.hpp"
#include "head_reader.hpp"
#include "inspect_capture.hpp"
#include "relay.hpp"
#include "stages.hpp"

namespace cproxy::proxy {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// While a slow upstream thinks, watches the client: if it goes away, the upstream is released at once
// instead of when its answer finally comes. Bytes that arrive instead (a pipelined request) are kept.
coro::task<void> watch_client(client_side* c, io::stream* up, bool* client_gone, io::duration limit) {
  const io::io_result r = co_await read_more(c->stream, &c->in, limit);
  // Gone means EOF or a reset; a cancel (the answer came) or the deadline (the 504 path) is not.
  if (io::is_cancelled(r.ec) || io::is_timeout(r.ec) || (!r.ec && r.bytes > 0)) co_return;
  *client_gone = true;
  up->cancel();
}

// The response head: a quick answer is read directly; a slow one with the client watched meanwhile.
coro::task<head_result> await_response_head(client_side* c, io::stream* up, byte_buffer* up_in,
                                            head_target target, bool* client_gone) {
  const clock::time_point deadline = io::loop_clock::now() + c->env->options->timeouts.response;
  const clock::time_point quick = std::min(deadline, io::loop_clock::now() + std::chrono::seconds(1));
  head_result rs = co_await read_head(up, up_in, target, quick);
  if (rs.what != head_result::status::timeout || io::loop_clock::now() >= deadline) co_return rs;
  coro::scope watcher;
  watcher.spawn(watch_client(c, up, client_gone, left_until(deadline)));
  rs = co_await read_head(up, up_in, target, deadline);
  c->stream->cancel();  // ends the watcher's read if it is still waiting
  co_await watcher.join();
  co_return rs;
}

// The failure edge of a response head that did not arrive whole.
failure head_failure(const head_result& rs, const client_side* c, bool replayable, bool nothing_read) {
  switch (rs.what) {
    case head_result::status::timeout:
      return upstream_failure(
          failure_kind::response_timeout,
          "no response within " + std::to_string(c->env->options->timeouts.response.count()) + " ms");
    case head_result::status::invalid:
      return upstream_failure(failure_kind::invalid_response, rs.error);
    case head_result::status::too_large:
      return upstream_failure(failure_kind::invalid_response, "a response head over 64 KiB");
    case head_result::status::closed:
    case head_result::status::complete:
      break;
  }
  failure f = upstream_failure(failure_kind::upstream_closed);
  f.retryable = replayable && nothing_read;  // a pooled connection closed under us: nothing was acted on
  return f;
}

failure broken_body(const relay_outcome& body) {
  failure f = body.read_error ? upstream_failure(failure_kind::upstream_closed, body.read_error.message())
                              : downstream_failure(failure_kind::client_gone, body.write_error.message());
  f.response_started = true;
  return f;
}

// The final response head (or a 101), with every 1xx before it passed on to the client; the body of an
// Expect: 100-continue request goes on the upstream's 100, or after a second without one.
struct final_head {
  std::size_t length = 0;
  bool body_sent = false;
  std::optional<failure> failed;
};

coro::task<final_head> receive_response_head(client_side* c, exchange* ex, io::stream* up, byte_buffer* up_in,
                                             http::response_head* resp, bool body_sent, bool replayable) {
  const http::request_head& head = *ex->request;
  const head_target target{nullptr, resp, &head};
  for (int interim = 0;; ++interim) {
    bool client_gone = false;
    head_result rs;
    if (!body_sent && head.expect_continue) {
      // RFC 9110 10.1.1: a client need not wait indefinitely for the 100; curl waits a second too.
      rs = co_await read_head(up, up_in, target, io::loop_clock::now() + std::chrono::seconds(1));
      if (rs.what == head_result::status::timeout) {
        std::optional<failure> body = co_await send_request_body(c, ex, up);
        if (body) co_return final_head{0, false, std::move(body)};
        body_sent = true;
        continue;
      }
    } else {
      rs = co_await await_response_head(c, up, up_in, target, &client_gone);
    }
    if (client_gone) co_return final_head{0, body_sent, downstream_failure(failure_kind::client_gone)};
    if (rs.what != head_result::status::complete)
      co_return final_head{0, body_sent, head_failure(rs, c, replayable, up_in->empty() && interim == 0)};
    if (interim == 0) ex->times.first_byte = io::loop_clock::now();
    if (resp->status >= 200 || resp->status == 101 || interim >= 100)
      co_return final_head{rs.length, body_sent, std::nullopt};
    const std::string interim_head = http::client_response_head(*resp, true);
    up_in->consume(rs.length);
    const io::io_result passed =
        co_await c->stream->write_all(bytes_of(interim_head), c->env->options->timeouts.idle);
    if (passed.ec) co_return final_head{0, body_sent, downstream_failure(failure_kind::client_gone)};
    if (resp->status == 100 && !body_sent) {
      std::optional<failure> body = co_await send_request_body(c, ex, up);
      if (body) co_return final_head{0, false, std::move(body)};
      body_sent = true;
    }
  }
}

// A 101 to a WebSocket upgrade: the head to the client, then the tunnel.
coro::task<response_outcome> switch_protocols(client_side* c, exchange* ex, io::stream* up,
                                              byte_buffer* up_in, const http::response_head* resp) {
  if (!ex->request->upgrade_websocket)
    co_return response_outcome{
        exchange_end::close, false,
        upstream_failure(failure_kind::invalid_response, "a 101 to a request that asked for no upgrade")};
  const timeouts& t = c->env->options->timeouts;
  const std::string switching = http::client_response_head(*resp, false);
  ex->status = 101;
  const io::io_result sent = co_await c->stream->write_all(bytes_of(switching), t.idle);
  if (sent.ec) co_return response_outcome{exchange_end::close, false, std::nullopt};
  ex->response_bytes = switching.size();
  const tunnel_bytes moved = co_await tunnel(c->stream, &c->in, up, up_in, t.tunnel_idle, false);
  ex->request_body_bytes += moved.to_upstream;  // as open_tunnel counts a CONNECT tunnel's bytes
  ex->response_bytes += moved.to_client;
  co_return response_outcome{exchange_end::close, false, std::nullopt};
}

}  // namespace

coro::task<response_outcome> relay_response(client_side* c, exchange* ex, io::stream* up, bool body_sent,
                                            bool replayable) {
  const timeouts& t = c->env->options->timeouts;
  const http::request_head& head = *ex->request;
  byte_buffer up_in;
  http::response_head& resp = ex->heads->response;
  final_head got = co_await receive_response_head(c, ex, up, &up_in, &resp, body_sent, replayable);
  if (got.failed) co_return response_outcome{exchange_end::close, false, std::move(got.failed)};
  up_in.consume(got.length);
  if (resp.status == 101) co_return co_await switch_protocols(c, ex, up, &up_in, &resp);

  // A body the client announced but that never went (the upstream answered without a 100) is still
  // on the client connection: it cannot carry another request.
  // An HTTP/1.0 client cannot read chunked (RFC 9112 6.1): it gets the payload, ended by closing.
  const bool unchunk = head.version == 10 && resp.body == http::framing::chunked;
  const bool client_keep = head.keep_alive && got.body_sent && resp.body != http::framing::until_close &&
                           !unchunk && !c->w->draining;
  std::string& out = ex->heads->client_head;
  http::client_response_head(resp, client_keep, unchunk, out);
  ex->status = resp.status;
  capture_response_head(ex, resp);
  std::optional<tap_stream> tap;
  io::stream* to = tap_body(ex, true, c->stream, unchunk ? http::framing::until_close : resp.body,
                            resp.content_length, &tap);
  if (resp.body == http::framing::length) {
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(resp.content_length, up_in.size()));
    out.append(up_in.view().substr(0, take));  // a small response leaves in one write
    if (tap) tap->take(up_in.view().substr(0, take));
    up_in.consume(take);
    resp.content_length -= take;
  }
  // A response that ends the connection and leaves whole in this write: the client reads it and the
  // EOF together (one wake-up for a client reading to EOF, not two).
  const bool whole =
      resp.body == http::framing::none || (resp.body == http::framing::length && resp.content_length == 0);
  const io::io_result sent = !client_keep && whole ? co_await c->stream->write_last(bytes_of(out), t.idle)
                                                   : co_await c->stream->write_all(bytes_of(out), t.idle);
  if (sent.ec) {
    failure gone = downstream_failure(failure_kind::client_gone, sent.ec.message());
    gone.response_started = true;
    co_return response_outcome{exchange_end::close, false, std::move(gone)};
  }
  ex->response_bytes = out.size();

  relay_outcome body;
  switch (resp.body) {
    case http::framing::none:
      break;
    case http::framing::length:
      if (resp.content_length > 0)
        body = co_await relay_length(up, &up_in, to, resp.content_length, t.idle, c->w->splice);
      break;
    case http::framing::chunked:
      body = co_await relay_chunked(up, &up_in, to, t.idle, unchunk);
      break;
    case http::framing::until_close:
      body = co_await relay_until_eof(up, &up_in, to, t.idle);
      break;
  }
  ex->response_bytes += body.bytes;
  if (!body.ok()) co_return response_outcome{exchange_end::close, false, broken_body(body)};

  const bool reusable =
      resp.keep_alive && got.body_sent && up_in.empty() && resp.body != http::framing::until_close;
  co_return response_outcome{client_keep ? exchange_end::keep_alive : exchange_end::close, reusable,
                             std::nullopt};
}

}  // namespace cproxy::proxy
