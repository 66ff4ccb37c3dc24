// Implementation of connection.hpp. Each stage is a function; serve_connection strings them together.
// Failure edges: a bad request gets its 4xx and the connection closes; an upstream failure before the
// response started gets its 502/504; a failure after it started closes this connection only.
#include "connection.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "connect/core/log.hpp"
#include "connect/coro/scope.hpp"
#include "connect/http/head.hpp"
#include "connect/http/rewrite.hpp"
#include "connect/tls/tls_stream.hpp"
#include "relay.hpp"
#include "responses.hpp"

namespace cproxy::proxy {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t read_chunk = 16 * 1024;

struct conn {
  const server_env* env;
  worker_env* w;
  io::stream* client;  // a socket_stream, or a tls_stream on an HTTPS port
  bool secure = false;
  byte_buffer in;  // client bytes read but not used yet (the rest of a head, a body, the next request)
  std::string client_ip;
  // For the access line of the request in progress.
  unsigned status = 0;
  std::uint64_t bytes = 0;
};

// Notes the status and size of an answer the proxy makes itself ("HTTP/1.1 404 ...").
void note_answer(conn* c, const std::string& response) {
  c->status = response.size() > 12 ? static_cast<unsigned>(std::atoi(response.c_str() + 9)) : 0;
  c->bytes = response.size();
}

std::span<const std::byte> bytes_of(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

// True once `buf` may hold a whole head: a blank line (CRLF CRLF, or a bare-LF one to reject) lies at
// or after `from`. Parsing only then keeps a client that trickles bytes from costing a parse per byte.
bool may_hold_head(std::string_view buf, std::size_t from) {
  const std::size_t start = from > 3 ? from - 3 : 0;
  return buf.find("\n\r\n", start) != std::string_view::npos || buf.find("\n\n", start) != std::string_view::npos;
}

// Appends up to read_chunk bytes from `s` to `buf`.
coro::task<io::io_result> read_more(io::stream* s, byte_buffer* buf, io::duration timeout) {
  const std::span<std::byte> space = buf->prepare(read_chunk);
  const io::io_result r = co_await s->read_some(space.first(read_chunk), timeout);
  if (!r.ec) buf->commit(r.bytes);
  co_return r;
}

// Rounded up: a timer that fires before the deadline would be read as the deadline passing too early.
io::duration left_until(clock::time_point deadline) {
  const auto left = std::chrono::ceil<io::duration>(deadline - clock::now());
  return left.count() > 0 ? left : io::duration{1};
}

// --- read_head ------------------------------------------------------------------------------------

enum class head_status { ok, closed, bad, too_large };

// `first`: the connection's first request. A new connection is always heard out, even while draining:
// it was accepted to be served (a --replace handover depends on it); only a keep-alive connection
// waiting for a further request is closed by a drain.
coro::task<head_status> read_head(conn* c, http::request_head* head, std::size_t* head_len, bool first) {
  std::size_t scanned = 0;
  std::optional<clock::time_point> deadline;  // the header timeout runs from the head's first byte
  for (int reads = 0; reads < 1'000'000; ++reads) {
    if (!c->in.empty() && may_hold_head(c->in.view(), scanned)) {
      const http::parse_result r = http::parse_request(c->in.view(), *head);
      if (r.status == http::parse_status::complete) {
        *head_len = r.consumed;
        co_return head_status::ok;
      }
      if (r.status == http::parse_status::invalid) {
        log::info("400 from ", c->client_ip, ": ", r.error);
        co_return head_status::bad;
      }
      if (r.status == http::parse_status::too_large) co_return head_status::too_large;
    }
    if (c->in.size() >= http::header_limit) co_return head_status::too_large;
    scanned = c->in.size();
    const bool idle = c->in.empty() && !first;
    if (idle && c->w->draining) co_return head_status::closed;
    if (!idle && !deadline) deadline = clock::now() + c->env->options->timeouts.header;
    const io::duration limit = idle ? c->env->options->timeouts.idle : left_until(*deadline);
    if (idle) c->w->idle_clients.insert(c->client);
    const io::io_result r = co_await read_more(c->client, &c->in, limit);
    if (idle) c->w->idle_clients.erase(c->client);
    if (r.ec || r.bytes == 0) co_return head_status::closed;
  }
  co_return head_status::closed;
}

// --- connect_upstream -----------------------------------------------------------------------------

struct dialed {
  enum class outcome { ok, refused, timeout, failed } result = outcome::failed;
  io::socket socket;
  bool reused = false;
  std::string reason;
};

std::string pool_key(const route::route& r) { return r.host + ":" + std::to_string(r.port); }

coro::task<dialed> connect_upstream(conn* c, const route::route* r, bool allow_pooled) {
  const std::string key = pool_key(*r);
  if (allow_pooled) {
    if (std::optional<io::socket> pooled = c->w->pool.take(key)) co_return dialed{dialed::outcome::ok, std::move(*pooled), true, {}};
  }
  std::vector<io::endpoint> candidates;
  if (r->host == "localhost") {
    // Dev servers such as Vite may listen on ::1 only: try both, the one that answered last first.
    const io::endpoint v4 = io::endpoint::loopback_v4(r->port);
    const io::endpoint v6 = io::endpoint::loopback_v6(r->port);
    if (c->w->pool.preferred_family(key) == 6) {
      candidates = {v6, v4};
    } else {
      candidates = {v4, v6};
    }
  } else if (const auto ep = io::endpoint::from(r->host, r->port)) {
    candidates = {*ep};
  } else {
    co_return dialed{dialed::outcome::failed, {}, false, "the route's host is not an IP address"};
  }
  dialed out{dialed::outcome::refused, {}, false, {}};
  for (const io::endpoint& ep : candidates) {
    std::error_code ec;
    io::socket s = io::socket::open(*c->w->ctx, ep.family(), ec);
    if (ec) co_return dialed{dialed::outcome::failed, {}, false, ec.message()};
    const std::error_code connected = co_await s.connect(ep, c->env->options->timeouts.connect);
    if (!connected) {
      c->w->pool.remember_family(key, ep.family() == AF_INET6 ? 6 : 4);
      co_return dialed{dialed::outcome::ok, std::move(s), false, {}};
    }
    if (io::is_timeout(connected)) {
      out = dialed{dialed::outcome::timeout, {}, false, {}};
    } else if (connected != std::errc::connection_refused && connected != std::errc::address_not_available &&
               connected != std::errc::network_unreachable) {
      out = dialed{dialed::outcome::failed, {}, false, connected.message()};
    }
  }
  co_return out;
}

// --- relay_http -----------------------------------------------------------------------------------

enum class response_status { ok, closed, timeout, invalid };

coro::task<response_status> read_response_head(io::stream* up, byte_buffer* buf, std::string method,
                                               http::response_head* out, std::size_t* len, clock::time_point deadline) {
  std::size_t scanned = 0;
  for (int reads = 0; reads < 1'000'000; ++reads) {
    if (!buf->empty() && may_hold_head(buf->view(), scanned)) {
      const http::parse_result r = http::parse_response(buf->view(), method, *out);
      if (r.status == http::parse_status::complete) {
        *len = r.consumed;
        co_return response_status::ok;
      }
      if (r.status != http::parse_status::need_more) {
        log::info("invalid response head: ", r.error);
        co_return response_status::invalid;
      }
    }
    if (buf->size() >= http::header_limit) co_return response_status::invalid;
    scanned = buf->size();
    const io::io_result r = co_await read_more(up, buf, left_until(deadline));
    if (io::is_timeout(r.ec)) co_return response_status::timeout;
    if (r.ec || r.bytes == 0) co_return response_status::closed;
  }
  co_return response_status::closed;
}

// While a slow upstream thinks, watches the client: if it goes away, the upstream is released at once
// instead of when its answer finally comes. Bytes that arrive instead (a pipelined request) are kept.
coro::task<void> watch_client(conn* c, io::stream* up, bool* client_gone, io::duration limit) {
  const io::io_result r = co_await read_more(c->client, &c->in, limit);
  // Gone means EOF or a reset; a cancel (the answer came) or the deadline (the 504 path) is not.
  if (io::is_cancelled(r.ec) || io::is_timeout(r.ec) || (!r.ec && r.bytes > 0)) co_return;
  *client_gone = true;
  up->cancel();
}

// The response head: a quick answer is read directly; a slow one with the client watched meanwhile.
coro::task<response_status> await_response_head(conn* c, io::stream* up, byte_buffer* up_in, const http::request_head* head,
                                                http::response_head* resp, std::size_t* len, bool* client_gone) {
  const clock::time_point deadline = clock::now() + c->env->options->timeouts.response;
  const clock::time_point quick = std::min(deadline, clock::now() + std::chrono::seconds(1));
  response_status rs = co_await read_response_head(up, up_in, head->method, resp, len, quick);
  if (rs != response_status::timeout || clock::now() >= deadline) co_return rs;
  coro::scope watcher;
  watcher.spawn(watch_client(c, up, client_gone, left_until(deadline)));
  rs = co_await read_response_head(up, up_in, head->method, resp, len, deadline);
  c->client->cancel();  // ends the watcher's read if it is still waiting
  co_await watcher.join();
  co_return rs;
}

coro::task<relay_outcome> relay_request_body(conn* c, const http::request_head* head, io::stream* up) {
  const io::duration idle = c->env->options->timeouts.idle;
  if (head->body == http::framing::length)
    co_return co_await relay_length(c->client, &c->in, up, head->content_length, idle, c->w->splice);
  if (head->body == http::framing::chunked)
    co_return co_await relay_chunked(c->client, &c->in, up, idle, false, c->env->options->max_body);
  co_return relay_outcome{};
}

enum class exchange_result { keep_alive, close, retry };

coro::task<exchange_result> send_error(conn* c, std::string response) {
  note_answer(c, response);
  co_await c->client->write_all(bytes_of(response), c->env->options->timeouts.idle);
  co_return exchange_result::close;
}

// One request to a routed service: forward_head, the request body, the response head and body.
coro::task<exchange_result> proxy_request(conn* c, const http::request_head* head, const route::route* r,
                                          const http::hop_trail* trail, bool allow_pooled) {
  const timeouts& t = c->env->options->timeouts;
  dialed d = co_await connect_upstream(c, r, allow_pooled);
  switch (d.result) {
    case dialed::outcome::ok: break;
    case dialed::outcome::refused:
      log::info("502 ", r->name, ": ", r->upstream_text(), " refused the connection");
      co_return co_await send_error(c, bad_gateway_response(r->name, ""));
    case dialed::outcome::timeout:
      log::info("504 ", r->name, ": connecting to ", r->upstream_text(), " timed out");
      co_return co_await send_error(c, gateway_timeout_response(r->name));
    case dialed::outcome::failed:
      log::info("502 ", r->name, ": ", d.reason);
      co_return co_await send_error(c, bad_gateway_response(r->name, d.reason));
  }
  io::socket_stream up(std::move(d.socket));
  const bool replayable = d.reused && head->body == http::framing::none;

  http::forward_context fwd{c->client_ip, c->env->port, c->secure ? "https" : "http", r->name};
  const std::string forwarded = http::forward_request_head(*head, fwd, *trail);
  const io::io_result sent = co_await up.write_all(bytes_of(forwarded), t.idle);
  if (sent.ec) {
    if (replayable) co_return exchange_result::retry;  // a pooled connection the upstream had closed
    co_return co_await send_error(c, bad_gateway_response(r->name, "the service closed the connection."));
  }

  bool body_sent = head->body == http::framing::none;
  if (!body_sent && !head->expect_continue) {
    const relay_outcome b = co_await relay_request_body(c, head, &up);
    if (b.read_error == std::errc::file_too_large)
      co_return co_await send_error(c, body_too_large_response(c->env->options->max_body));
    if (b.read_error) co_return exchange_result::close;  // the client went away or sent a bad body
    if (b.write_error) co_return co_await send_error(c, bad_gateway_response(r->name, "the service stopped reading the request."));
    body_sent = true;
  }

  byte_buffer up_in;
  http::response_head resp;
  std::size_t resp_len = 0;
  for (int interim = 0;; ++interim) {
    bool client_gone = false;
    response_status rs;
    if (!body_sent && head->expect_continue) {
      // The body waits for the upstream's 100; an upstream that ignores Expect gets it after a second
      // anyway, as curl does (RFC 9110 10.1.1: a client need not wait indefinitely).
      rs = co_await read_response_head(&up, &up_in, head->method, &resp, &resp_len, clock::now() + std::chrono::seconds(1));
      if (rs == response_status::timeout) {
        const relay_outcome b = co_await relay_request_body(c, head, &up);
        if (!b.ok()) co_return exchange_result::close;
        body_sent = true;
        continue;
      }
    } else {
      rs = co_await await_response_head(c, &up, &up_in, head, &resp, &resp_len, &client_gone);
    }
    if (client_gone) co_return exchange_result::close;
    if (rs == response_status::closed && replayable && up_in.empty()) co_return exchange_result::retry;
    if (rs == response_status::timeout) {
      log::info("504 ", r->name, ": no response within ", t.response.count(), " ms");
      co_return co_await send_error(c, gateway_timeout_response(r->name));
    }
    if (rs == response_status::invalid)
      co_return co_await send_error(c, bad_gateway_response(r->name, "the service sent an invalid response."));
    if (rs == response_status::closed)
      co_return co_await send_error(c, bad_gateway_response(r->name, "the service closed the connection."));
    if (resp.status >= 200 || resp.status == 101 || interim >= 100) break;
    // 1xx: pass it on; a 100 is the go-ahead for a body that waited on Expect: 100-continue.
    const std::string interim_head = http::client_response_head(resp, true);
    up_in.consume(resp_len);
    if ((co_await c->client->write_all(bytes_of(interim_head), t.idle)).ec) co_return exchange_result::close;
    if (resp.status == 100 && !body_sent) {
      const relay_outcome b = co_await relay_request_body(c, head, &up);
      if (!b.ok()) co_return exchange_result::close;
      body_sent = true;
    }
  }
  up_in.consume(resp_len);

  if (resp.status == 101) {
    if (!head->upgrade_websocket) co_return co_await send_error(c, bad_gateway_response(r->name, "unexpected 101."));
    const std::string h = http::client_response_head(resp, false);
    c->status = 101;
    if ((co_await c->client->write_all(bytes_of(h), t.idle)).ec) co_return exchange_result::close;
    co_await tunnel(c->client, &c->in, &up, &up_in, t.tunnel_idle, false);
    co_return exchange_result::close;
  }

  // A body the client announced but that never went (the upstream answered without a 100) is still
  // on the client connection: it cannot carry another request.
  // An HTTP/1.0 client cannot read chunked (RFC 9112 6.1): it gets the payload, ended by closing.
  const bool unchunk = head->version == 10 && resp.body == http::framing::chunked;
  const bool client_keep =
      head->keep_alive && body_sent && resp.body != http::framing::until_close && !unchunk && !c->w->draining;
  std::string out = http::client_response_head(resp, client_keep, unchunk);
  c->status = resp.status;
  if (resp.body == http::framing::length) {
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(resp.content_length, up_in.size()));
    out.append(up_in.view().substr(0, take));  // a small response leaves in one write
    up_in.consume(take);
    resp.content_length -= take;
  }
  if ((co_await c->client->write_all(bytes_of(out), t.idle)).ec) co_return exchange_result::close;
  c->bytes = out.size();

  relay_outcome body;
  switch (resp.body) {
    case http::framing::none: break;
    case http::framing::length:
      if (resp.content_length > 0) body = co_await relay_length(&up, &up_in, c->client, resp.content_length, t.idle, c->w->splice);
      break;
    case http::framing::chunked: body = co_await relay_chunked(&up, &up_in, c->client, t.idle, unchunk); break;
    case http::framing::until_close: body = co_await relay_until_eof(&up, &up_in, c->client, t.idle); break;
  }
  c->bytes += body.bytes;
  if (!body.ok()) co_return exchange_result::close;  // the response started: closing is all that is left

  if (resp.keep_alive && body_sent && up_in.empty() && resp.body != http::framing::until_close) {
    c->w->pool.give_back(pool_key(*r), std::move(*up.plain_socket()));
  }
  co_return client_keep ? exchange_result::keep_alive : exchange_result::close;
}

coro::task<exchange_result> open_tunnel(conn* c, const route::route* r) {
  dialed d = co_await connect_upstream(c, r, false);
  if (d.result == dialed::outcome::refused) co_return co_await send_error(c, bad_gateway_response(r->name, ""));
  if (d.result == dialed::outcome::timeout) co_return co_await send_error(c, gateway_timeout_response(r->name));
  if (d.result != dialed::outcome::ok) co_return co_await send_error(c, bad_gateway_response(r->name, d.reason));
  io::socket_stream up(std::move(d.socket));
  const std::string established = connect_established_response();
  c->status = 200;
  if ((co_await c->client->write_all(bytes_of(established), c->env->options->timeouts.idle)).ec) co_return exchange_result::close;
  byte_buffer nothing;
  co_await tunnel(c->client, &c->in, &up, &nothing, c->env->options->timeouts.tunnel_idle, c->w->splice);
  co_return exchange_result::close;
}

const http::field* find_field(const http::request_head& head, std::string_view name) {
  for (const http::field& f : head.fields)
    if (http::iequals(f.name, name)) return &f;
  return nullptr;
}

// --- resolve_route and dispatch -------------------------------------------------------------------

coro::task<exchange_result> handle_request(conn* c, const http::request_head* head) {
  const std::shared_ptr<const route::table> table = c->w->routes.hold();  // this request's snapshot
  const page_context page{c->env->options, c->env->port, table.get()};
  const bool proxy_form = head->is_connect() || head->absolute_form;
  const route::resolution where = route::resolve(*table, proxy_form ? head->authority : head->host, proxy_form);
  const bool keep = head->keep_alive && head->body == http::framing::none && !c->w->draining;

  switch (where.what) {
    case route::resolution::kind::own_page: {
      if (head->is_connect()) co_return co_await send_error(c, not_found_response(page, "localhost", false));
      const http::field* accept = find_field(*head, "accept");
      const std::string page_bytes = own_page_response(page, accept ? accept->value : "", head->method == "HEAD", keep);
      note_answer(c, page_bytes);
      if ((co_await c->client->write_all(bytes_of(page_bytes), c->env->options->timeouts.idle)).ec) co_return exchange_result::close;
      co_return keep ? exchange_result::keep_alive : exchange_result::close;
    }
    case route::resolution::kind::unknown_service: {
      const std::string answer = not_found_response(page, where.name, keep);
      note_answer(c, answer);
      if ((co_await c->client->write_all(bytes_of(answer), c->env->options->timeouts.idle)).ec) co_return exchange_result::close;
      co_return keep ? exchange_result::keep_alive : exchange_result::close;
    }
    case route::resolution::kind::foreign_host: {
      const std::string answer = misdirected_response(where.name, keep);
      note_answer(c, answer);
      if ((co_await c->client->write_all(bytes_of(answer), c->env->options->timeouts.idle)).ec) co_return exchange_result::close;
      co_return keep ? exchange_result::keep_alive : exchange_result::close;
    }
    case route::resolution::kind::service: break;
  }

  const route::route* r = where.target;
  if (head->is_connect()) co_return co_await open_tunnel(c, r);
  const std::uint64_t max_body = c->env->options->max_body;
  if (max_body > 0 && head->body == http::framing::length && head->content_length > max_body)
    co_return co_await send_error(c, body_too_large_response(max_body));
  const http::hop_trail trail = http::follow_trail(*head, r->name);
  if (trail.loop) {
    log::info("508 ", r->name, ": loop, route trail ", trail.routes);
    co_return co_await send_error(c, loop_response(r->name, trail.routes, c->env->port));
  }
  exchange_result result = co_await proxy_request(c, head, r, &trail, true);
  if (result == exchange_result::retry) result = co_await proxy_request(c, head, r, &trail, false);
  if (result == exchange_result::retry) result = co_await send_error(c, bad_gateway_response(r->name, "the service closed the connection."));
  co_return result;
}

// One access line: client, method, host and target, status (0: no answer was sent), bytes, duration.
void log_access(const conn& c, const http::request_head& head, clock::time_point started) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started).count();
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.2fms", static_cast<double>(micros) / 1000.0);
  log::info(c.client_ip, " ", head.method, " ", head.is_connect() || head.absolute_form ? "" : head.host, head.target,
            " ", c.status, " ", c.bytes, "B ", duration);
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

// The requests of one connection, keep-alive included. `plain_on_tls`: a plain HTTP client on the
// HTTPS port, which is told where the https URL is (CONNECT excepted: a proxy client is served).
coro::task<void> serve_requests(conn* c, bool plain_on_tls) {
  const server_env* env = c->env;
  for (int requests = 0;; ++requests) {
    http::request_head head;
    std::size_t head_len = 0;
    const head_status hs = co_await read_head(c, &head, &head_len, requests == 0);
    if (hs == head_status::closed) co_return;
    if (hs != head_status::ok) {
      const std::string answer = hs == head_status::too_large ? too_large_response() : bad_request_response();
      co_await c->client->write_all(bytes_of(answer), env->options->timeouts.header);
      co_return;
    }
    c->in.consume(head_len);
    const clock::time_point started = clock::now();
    c->status = 0;
    c->bytes = 0;
    exchange_result result;
    if (plain_on_tls && !head.is_connect()) {
      const std::string_view authority = head.absolute_form ? head.authority : head.host;
      // Named, not a temporary in the co_await operand (GCC 12 destroys such a temporary twice).
      std::string answer = authority.empty() ? bad_request_response() : https_redirect_response(authority, path_of(head));
      result = co_await send_error(c, std::move(answer));
    } else {
      result = co_await handle_request(c, &head);
    }
    if (env->options->access_log) log_access(*c, head, started);
    if (result != exchange_result::keep_alive) co_return;
  }
}

// An HTTPS port: the first bytes tell a TLS client (a handshake record) from a plain HTTP one.
coro::task<void> serve_tls_port(io::socket client, conn* c) {
  const timeouts& t = c->env->options->timeouts;
  const std::span<std::byte> space = c->in.prepare(read_chunk);
  const io::io_result first = co_await client.recv(space.first(read_chunk), t.header);
  if (first.ec || first.bytes == 0) co_return;
  c->in.commit(first.bytes);
  if (!tls::opens_tls_handshake(static_cast<unsigned char>(c->in.view().front()))) {
    io::socket_stream plain(std::move(client));
    c->client = &plain;
    co_await serve_requests(c, true);
    co_return;
  }
  tls::ssl_ptr session = c->env->options->tls->new_session();
  if (!session) co_return;
  const std::string_view hello = c->in.view();
  tls::tls_stream secure(std::move(client), std::move(session),
                         std::span<const std::byte>(reinterpret_cast<const std::byte*>(hello.data()), hello.size()));
  c->in.consume(hello.size());
  if (const std::error_code ec = co_await secure.handshake(c->w->ctx, t.handshake)) {
    // A TLS failure (an unknown CA, an old protocol) is worth a line; a client that left or stalled
    // mid-handshake is not, as a plain client that leaves before its request is not.
    if (!secure.failure_reason().empty()) log::info("TLS handshake with ", c->client_ip, " failed: ", secure.failure_reason());
    co_return;
  }
  c->client = &secure;
  c->secure = true;
  co_await serve_requests(c, false);
}

}  // namespace

coro::task<void> serve_connection(io::socket client, const server_env* env, worker_env* worker) {
  conn c{env, worker, nullptr, false, {}, {}};
  c.client_ip = client.remote_endpoint().address();
  if (env->options->tls) {
    co_await serve_tls_port(std::move(client), &c);
    co_return;
  }
  io::socket_stream plain(std::move(client));
  c.client = &plain;
  co_await serve_requests(&c, false);
}

}  // namespace cproxy::proxy
