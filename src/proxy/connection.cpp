// The HTTP/1.1 front-end of one client connection: sniff and tls_accept on an HTTPS port, then
// read_request and run_exchange for each request while keep-alive holds, and the exchange's end
// (the access line; where the inspector will capture it).
#include "connection.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "client_side.hpp"
#include "connect/core/log.hpp"
#include "connect/io/loop_clock.hpp"
#include "connect/tls/tls_stream.hpp"
#include "h2/h2_session.hpp"
#include "head_reader.hpp"
#include "inspect_capture.hpp"
#include "responses.hpp"
#include "stages.hpp"

namespace cproxy::proxy {
namespace {

constexpr std::size_t sniff_chunk = 16 * 1024;
constexpr io::duration drain_last_look{50};
constexpr io::duration linger_quiet{1000};
constexpr std::chrono::seconds linger_time{5};

enum class request_read { complete, closed, failed };

// read_request: the next request head. A new connection is always heard out, even while draining: it
// was accepted to be served (a --replace handover depends on it); only a keep-alive connection waiting
// for a further request is closed by a drain. A bad head is answered here (400 or 431) and closes.
coro::task<request_read> read_request(client_side* c, exchange* ex, bool first) {
  const timeouts& t = c->env->options->timeouts;
  if (c->in.empty() && !first) {
    if (c->w->draining) co_return request_read::closed;
    enter_idle(c->w, c->stream, &c->idle);
    const io::io_result r = co_await read_idle(c->stream, &c->in, t.idle);
    leave_idle(c->w, c->stream, &c->idle);
    if (io::is_cancelled(r.ec) && c->w->draining) {
      // The drain closed this idle connection, but a request may have crossed it on the wire: one short
      // last look, so that request is served (with Connection: close) instead of lost with the close.
      const io::io_result last = co_await read_more(c->stream, &c->in, drain_last_look);
      if (last.ec || last.bytes == 0) co_return request_read::closed;
    } else if (r.ec || r.bytes == 0) {
      co_return request_read::closed;
    }
  }
  // The inspector's record and the heads' storage are taken once a request begins: an idle connection
  // holds neither.
  begin_capture(*c, ex);
  ex->heads = c->w->heads.take();
  ex->request = &ex->heads->request;
  // The header timeout runs from the head's first byte, so a client trickling bytes cannot stretch it.
  const clock::time_point deadline = io::loop_clock::now() + t.header;
  head_result rs =
      co_await read_head(c->stream, &c->in, head_target{&ex->heads->request, nullptr, nullptr}, deadline);
  switch (rs.what) {
    case head_result::status::complete:
      c->in.consume(rs.length);
      co_return request_read::complete;
    case head_result::status::closed:
    case head_result::status::timeout:
      co_return request_read::closed;
    case head_result::status::invalid:
      co_await answer_failure(c, ex, downstream_failure(failure_kind::bad_request, std::move(rs.error)));
      co_return request_read::failed;
    case head_result::status::too_large:
      co_await answer_failure(c, ex, downstream_failure(failure_kind::head_too_large));
      co_return request_read::failed;
  }
  co_return request_read::closed;
}

// The path and query of a request's target, for a redirect: an absolute-form target without its
// scheme and authority, "*" (OPTIONS) as "/".
std::string_view path_of(const http::request_head& head) {
  std::string_view t = head.target;
  if (head.absolute_form) {
    const std::size_t authority = t.find("://");
    const std::size_t path = authority == std::string_view::npos ? t.size() : t.find('/', authority + 3);
    t = path == std::string_view::npos ? std::string_view{} : t.substr(path);
  }
  return t.empty() || t == "*" ? std::string_view("/") : t;
}

// The end of an exchange: its access line (client, method, host and target, status, bytes, duration).
// The request inspector plugs in here to capture the exchange record.
void finish_exchange(const client_side& c, exchange* ex) {
  ex->times.finished = io::loop_clock::now();
  end_capture(c, ex);
  if (!c.env->options->access_log) return;
  const http::request_head& head = *ex->request;
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(ex->times.finished - ex->times.started).count();
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.2fms", static_cast<double>(micros) / 1000.0);
  // An HTTP/2 stream's line says so at its end; HTTP/1.1 lines are unchanged.
  log::info(c.ip, " ", head.method, " ", head.is_connect() || head.absolute_form ? "" : head.host,
            head.target, " ", ex->status, " ", ex->response_bytes, "B ", duration,
            ex->protocol == "h2" ? " h2" : "");
}

// After an error answer the client may still be sending a body nobody read; closing with unread bytes
// makes the kernel send a reset, which can destroy the answer before the client reads it. So the
// proxy stops sending, then reads and drops what comes for a short while (nginx's lingering close).
coro::task<void> linger(client_side* c) {
  c->stream->shutdown_send();
  c->in.consume(c->in.size());
  const clock::time_point deadline = io::loop_clock::now() + linger_time;
  for (;;) {  // until the client closes, goes quiet for a second, or the linger time is up
    const io::io_result r =
        co_await read_more(c->stream, &c->in, std::min(left_until(deadline), linger_quiet));
    if (r.ec || r.bytes == 0 || io::loop_clock::now() >= deadline) co_return;
    c->in.consume(c->in.size());
  }
}

// The requests of one connection, keep-alive included. `plain_on_tls`: a plain HTTP client on the
// HTTPS port, which is told where the https URL is (CONNECT excepted: a proxy client is served).
coro::task<void> serve_requests(client_side* c, bool plain_on_tls) {
  for (int requests = 0;; ++requests) {
    exchange ex;
    ex.protocol = c->protocol;
    const request_read got = co_await read_request(c, &ex, requests == 0);
    if (got == request_read::failed) co_await linger(c);
    if (got != request_read::complete) co_return;
    const http::request_head& head = *ex.request;
    ex.times.started = io::loop_clock::now();
    exchange_end end;
    if (plain_on_tls && !head.is_connect()) {
      const std::string_view authority = head.absolute_form ? head.authority : head.host;
      const bool known = !authority.empty();
      std::string answer = known ? https_redirect_response(authority, path_of(head)) : bad_request_response();
      end = co_await send_own_answer(c, &ex, known ? 308 : 400, std::move(answer), false);
    } else {
      end = co_await run_exchange(c, &ex);
    }
    finish_exchange(*c, &ex);
    if (end == exchange_end::keep_alive && !c->one_exchange) continue;
    if (end == exchange_end::keep_alive) co_return;
    if (ex.failed && ex.status >= 400) co_await linger(c);
    co_return;
  }
}

// sniff and tls_accept: on an HTTPS port the first bytes tell a TLS client (a handshake record) from
// a plain HTTP one; a TLS client is served once its handshake is done.
coro::task<void> serve_tls_port(io::socket client, client_side* c) {
  const timeouts& t = c->env->options->timeouts;
  const std::span<std::byte> space = c->in.prepare(sniff_chunk);
  const io::io_result first = co_await client.recv(space.first(sniff_chunk), t.header);
  if (first.ec || first.bytes == 0) co_return;
  c->in.commit(first.bytes);
  if (!tls::opens_tls_handshake(static_cast<unsigned char>(c->in.view().front()))) {
    io::socket_stream plain(std::move(client));
    c->stream = &plain;
    co_await serve_requests(c, true);
    co_return;
  }
  tls::ssl_ptr session = c->env->options->tls->new_session();
  if (!session) co_return;
  const std::string_view hello = c->in.view();
  tls::tls_stream secure(
      std::move(client), std::move(session),
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(hello.data()), hello.size()));
  c->in.consume(hello.size());
  const std::error_code shaken = co_await secure.handshake(c->w->ctx, t.handshake);
  if (shaken) {
    // A TLS failure (an unknown CA, an old protocol) is worth a line; a client that left or stalled
    // mid-handshake is not, as a plain client that leaves before its request is not.
    if (!secure.failure_reason().empty())
      log::info("TLS handshake with ", c->ip, " failed: ", secure.failure_reason());
    co_return;
  }
  c->stream = &secure;
  c->secure = true;
  if (secure.alpn() == "h2") {
    co_await h2::serve_h2(c);
    co_return;
  }
  co_await serve_requests(c, false);
}

enum class first_bytes { h2_preface, other, closed };

// The plain port's sniff: a client with prior knowledge of HTTP/2 opens with the connection preface
// (RFC 9113 section 3.3); anything else is HTTP/1.x. The bytes read stay in c->in for either.
coro::task<first_bytes> sniff_h2_preface(client_side* c) {
  static constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const clock::time_point deadline = io::loop_clock::now() + c->env->options->timeouts.header;
  for (;;) {
    const std::string_view got = c->in.view();
    const std::size_t n = std::min(got.size(), preface.size());
    if (got.substr(0, n) != preface.substr(0, n)) co_return first_bytes::other;
    if (n == preface.size()) co_return first_bytes::h2_preface;
    const io::io_result r = co_await read_more(c->stream, &c->in, left_until(deadline));
    if (r.ec || r.bytes == 0) co_return c->in.empty() ? first_bytes::closed : first_bytes::other;
  }
}

}  // namespace

coro::task<void> serve_client(io::stream* client, std::string client_ip, bool secure, const server_env* env,
                              worker_env* worker) {
  client_side c;
  c.env = env;
  c.w = worker;
  c.stream = client;
  c.secure = secure;
  c.ip = std::move(client_ip);
  co_await serve_requests(&c, false);
}

coro::task<void> serve_connection(io::socket client, const server_env* env, worker_env* worker) {
  client_side c;
  c.env = env;
  c.w = worker;
  c.ip = client.remote_endpoint().address();
  if (env->options->tls) {
    co_await serve_tls_port(std::move(client), &c);
    co_return;
  }
  io::socket_stream plain(std::move(client));
  c.stream = &plain;
  const first_bytes first = co_await sniff_h2_preface(&c);
  if (first == first_bytes::closed) co_return;
  if (first == first_bytes::h2_preface) {
    co_await h2::serve_h2(&c);
    co_return;
  }
  co_await serve_requests(&c, false);
}

coro::task<void> serve_h2_stream(io::stream* s, const client_side* parent, std::string head) {
  client_side c;
  c.env = parent->env;
  c.w = parent->w;
  c.stream = s;
  c.secure = parent->secure;
  c.ip = parent->ip;
  c.protocol = "h2";
  c.one_exchange = true;
  // The stream's head, already whole: read_request parses it without a read (nor a read buffer).
  c.in.append(head);
  co_await serve_requests(&c, false);
}

}  // namespace cproxy::proxy
