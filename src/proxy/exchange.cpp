// run_exchange: the stages of one request in order, with their failure edges, and the two ways an
// exchange answers by itself (its own answer, or a failure's). Also the CONNECT tunnel stage.
#include "connect/core/log.hpp"
#include "connect/http/chunked.hpp"
#include "connect/io/loop_clock.hpp"
#include "error_pages.hpp"
#include "failure_answer.hpp"
#include "hold.hpp"
#include "inspect_api.hpp"
#include "inspect_capture.hpp"
#include "relay.hpp"
#include "responses.hpp"
#include "stages.hpp"

namespace cproxy::proxy {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Body bytes that arrived with the head are checked before any upstream is dialled: a malformed chunk
// size there must get its 400 without the head having gone anywhere.
std::optional<failure> check_buffered_body(const client_side* c, const http::request_head& head) {
  if (head.body != http::framing::chunked || c->in.empty()) return std::nullopt;
  http::chunked_scanner scanner;
  std::size_t used = 0;
  if (scanner.feed(c->in.view(), used) == http::chunked_scanner::status::invalid)
    return downstream_failure(failure_kind::bad_request, "invalid chunked body");
  const std::uint64_t max_body = c->env->options->max_body;
  if (max_body > 0 && scanner.payload_bytes() > max_body)
    return downstream_failure(failure_kind::body_too_large);
  return std::nullopt;
}

}  // namespace

coro::task<exchange_end> send_own_answer(client_side* c, exchange* ex, unsigned status, std::string answer,
                                         bool keep_alive) {
  ex->status = status;
  ex->response_bytes = answer.size();
  capture_own_answer(ex, answer);
  const io::io_result sent = co_await c->stream->write_all(bytes_of(answer), c->env->options->timeouts.idle);
  co_return !sent.ec && keep_alive ? exchange_end::keep_alive : exchange_end::close;
}

coro::task<exchange_end> answer_failure(client_side* c, exchange* ex, failure f) {
  failure_answer a =
      answer_for(f, ex->route, c->ip, c->env->options->max_body, ex->request && wants_html(*ex->request));
  if (!a.log_line.empty()) log::info(a.log_line);
  ex->failed = std::move(f);
  if (a.status == 0) co_return exchange_end::close;
  ex->status = a.status;
  ex->response_bytes = a.response.size();
  capture_own_answer(ex, a.response);
  co_await c->stream->write_all(bytes_of(a.response), c->env->options->timeouts.idle);
  co_return exchange_end::close;
}

coro::task<dial_result> connect_upstream(client_side* c, exchange* ex, bool allow_pooled) {
  dial_result d =
      co_await c->w->upstreams->connect(ex->route, c->env->options->timeouts.connect, allow_pooled);
  // Restart-holding: a refused connect waits and is retried while the upstream may be restarting.
  if (d.failed && d.failed->kind == failure_kind::refused) d = co_await hold_upstream(c, ex, std::move(d));
  ex->reused_upstream = d.reused;
  if (!d.failed) ex->times.connected = io::loop_clock::now();
  co_return d;
}

coro::task<exchange_end> open_tunnel(client_side* c, exchange* ex) {
  dial_result d = co_await connect_upstream(c, ex, false);
  if (d.failed) co_return co_await answer_failure(c, ex, std::move(*d.failed));
  const std::string established = connect_established_response();
  ex->status = 200;
  const io::io_result sent =
      co_await c->stream->write_all(bytes_of(established), c->env->options->timeouts.idle);
  if (sent.ec) co_return exchange_end::close;
  ex->response_bytes = established.size();
  byte_buffer nothing;
  const tunnel_bytes moved = co_await tunnel(c->stream, &c->in, d.stream.get(), &nothing,
                                             c->env->options->timeouts.tunnel_idle, c->w->splice);
  // A tunnel's record counts what went through it: the client's bytes as the request's, the upstream's
  // added to the answer head.
  ex->request_body_bytes += moved.to_upstream;
  ex->response_bytes += moved.to_client;
  co_return exchange_end::close;
}

coro::task<exchange_end> run_exchange(client_side* c, exchange* ex) {
  route_decision where = resolve_route(c, ex);
  if (where.own_page) {
    ex->capture.reset();  // the inspector does not watch itself (its page polls it)
    if (is_inspector_target(ex->request->target)) co_return co_await serve_inspector(c, ex);
  }
  if (!where.route)
    co_return co_await send_own_answer(c, ex, where.status, std::move(where.answer), where.keep_alive);
  ex->route = where.route;
  if (ex->request->is_connect()) co_return co_await open_tunnel(c, ex);
  if (std::optional<failure> bad = check_buffered_body(c, *ex->request))
    co_return co_await answer_failure(c, ex, std::move(*bad));

  // A pooled connection may turn out closed by the upstream before it read anything: then once more on
  // a fresh one.
  for (int attempt = 0;; ++attempt) {
    dial_result d = co_await connect_upstream(c, ex, attempt == 0);
    if (d.failed) co_return co_await answer_failure(c, ex, std::move(*d.failed));
    bool body_sent = false;
    std::optional<failure> failed = co_await forward_request(c, ex, d.stream.get(), &where.trail, &body_sent);
    if (!failed) {
      const bool replayable = d.reused && ex->request->body == http::framing::none;
      response_outcome r = co_await relay_response(c, ex, d.stream.get(), body_sent, replayable);
      if (!r.failed) {
        if (r.upstream_reusable) c->w->upstreams->give_back(ex->route, std::move(d.stream));
        co_return r.end;
      }
      failed = std::move(r.failed);
    }
    if (!failed->retryable || attempt > 0) {
      failed->retryable = false;
      co_return co_await answer_failure(c, ex, std::move(*failed));
    }
  }
}

}  // namespace cproxy::proxy
