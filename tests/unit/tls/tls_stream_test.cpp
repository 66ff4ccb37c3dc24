// Unit tests for connect/tls/tls_stream.hpp over an in-memory transport (support/fault_stream.hpp),
// against an OpenSSL client over memory BIOs pumped through the other end. Its rules: one transport
// write in flight even when a read makes OpenSSL write (an alert) during a send, a KeyUpdate answered,
// shutdown_send = close_notify then half-close, after the write in flight; the handshake times out;
// and a sweep failing each transport operation of a whole exchange ends every run in an error code.
#include "connect/tls/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "connect/coro/scope.hpp"
#include "connect/io/timer.hpp"
#include "connect/tls/server_context.hpp"
#include "support/backends.hpp"
#include "support/fault_stream.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace tls = cproxy::tls;
namespace test = cproxy::test;
using test::fault_counter;
using test::fault_stream;

namespace {

constexpr io::duration op_timeout = 2s;  // per operation; a hang is the watchdog's
constexpr std::size_t bulk = 256 * 1024;
constexpr std::size_t small_capacity = 4096;  // keeps a bulk write in flight until the client reads

// One CA and start-up leaf for the whole suite: key generation is the slow part.
tls::server_context& server_tls() {
  static const auto now = std::chrono::system_clock::now();
  static const auto ca = std::make_shared<const tls::key_pair>(tls::make_ca({"test"}, now));
  static tls::server_context context{
      tls::server_identity{tls::mint_leaf(*ca, {"localhost"}, now), ca, {"test"}}};
  return context;
}

char pattern_at(std::size_t i) {
  return static_cast<char>('a' + (i * 7 + i / 251) % 26);
}
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = pattern_at(i);
  return s;
}

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};

// A TLS client over memory BIOs whose ciphertext goes through one end of a fault_stream pair.
struct tls_client {
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx{SSL_CTX_new(TLS_client_method())};
  tls::ssl_ptr ssl;
  BIO* in = nullptr;
  BIO* out = nullptr;
  std::unique_ptr<fault_stream> end;
  int key_updates_received = 0;

  explicit tls_client(std::unique_ptr<fault_stream> e) : end(std::move(e)) {
    ssl.reset(SSL_new(ctx.get()));
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl.get(), in, out);
    SSL_set_connect_state(ssl.get());
    SSL_set_msg_callback(ssl.get(), &on_message);
    SSL_set_msg_callback_arg(ssl.get(), this);
  }

  static void on_message(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*,
                         void* arg) {
    const auto* bytes = static_cast<const unsigned char*>(buf);
    if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 && bytes[0] == SSL3_MT_KEY_UPDATE)
      ++static_cast<tls_client*>(arg)->key_updates_received;
  }
};

std::error_code protocol_error() {
  return std::make_error_code(std::errc::protocol_error);
}
std::error_code aborted() {
  return std::make_error_code(std::errc::connection_aborted);
}

coro::task<std::error_code> client_flush(tls_client* c) {
  for (std::size_t pending = BIO_ctrl_pending(c->out); pending > 0; pending = BIO_ctrl_pending(c->out)) {
    std::vector<std::byte> buf(pending);
    const int n = BIO_read(c->out, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) break;
    const std::span<const std::byte> bytes(buf.data(), static_cast<std::size_t>(n));
    const io::io_result r = co_await c->end->write_all(bytes, op_timeout);
    if (r.ec) co_return r.ec;
  }
  co_return std::error_code{};
}

// Ciphertext from the transport into the client's input BIO; 0 bytes is EOF.
coro::task<io::io_result> client_fill(tls_client* c) {
  std::vector<std::byte> buf(16 * 1024);
  const std::span<std::byte> into(buf);
  const io::io_result r = co_await c->end->read_some(into, op_timeout);
  if (!r.ec && r.bytes > 0) BIO_write(c->in, buf.data(), static_cast<int>(r.bytes));
  co_return r;
}

coro::task<std::error_code> client_handshake(tls_client* c) {
  for (int step = 0; step < 100; ++step) {
    const int rc = SSL_do_handshake(c->ssl.get());
    if (const std::error_code ec = co_await client_flush(c)) co_return ec;
    if (rc == 1) co_return std::error_code{};
    if (SSL_get_error(c->ssl.get(), rc) != SSL_ERROR_WANT_READ) {
      ERR_clear_error();
      co_return protocol_error();
    }
    const io::io_result r = co_await client_fill(c);
    if (r.ec) co_return r.ec;
    if (r.bytes == 0) co_return aborted();
  }
  co_return protocol_error();
}

// `data`: a string literal (GCC 12: no temporary std::string in a co_await operand).
coro::task<std::error_code> client_write(tls_client* c, const char* data) {
  std::size_t n = 0;
  if (SSL_write_ex(c->ssl.get(), data, std::strlen(data), &n) != 1) {
    ERR_clear_error();
    co_return protocol_error();
  }
  co_return co_await client_flush(c);
}

struct client_read {
  std::error_code ec;
  std::string data;
  bool close_notify = false;  // the server's close_notify arrived
};

// Plaintext until `want` bytes arrived, or the server's close_notify (want 0: read until it).
coro::task<void> client_read_until(tls_client* c, std::size_t want, client_read* out) {
  std::vector<char> buf(16 * 1024);
  for (int step = 0; step < 100'000; ++step) {
    if (want > 0 && out->data.size() >= want) co_return;
    std::size_t n = 0;
    const int rc = SSL_read_ex(c->ssl.get(), buf.data(), buf.size(), &n);
    if (rc == 1) {
      out->data.append(buf.data(), n);
      continue;
    }
    const int err = SSL_get_error(c->ssl.get(), rc);
    if (err == SSL_ERROR_ZERO_RETURN) {
      out->close_notify = true;
      co_return;
    }
    if (err != SSL_ERROR_WANT_READ) {
      ERR_clear_error();
      out->ec = protocol_error();
      co_return;
    }
    if (const std::error_code ec = co_await client_flush(c)) {
      out->ec = ec;
      co_return;
    }
    const io::io_result r = co_await client_fill(c);
    if (r.ec || r.bytes == 0) {
      out->ec = r.ec ? r.ec : aborted();
      co_return;
    }
  }
  out->ec = protocol_error();
}

// The client's side of a close: close_notify, then EOF.
coro::task<std::error_code> client_close(tls_client* c) {
  if (SSL_shutdown(c->ssl.get()) < 0) ERR_clear_error();
  const std::error_code ec = co_await client_flush(c);
  c->end->shutdown_send();
  co_return ec;
}

// A raw read on the client's end after close_notify: 0 bytes (EOF) is what a half-close gives.
coro::task<io::io_result> client_raw_read(tls_client* c) {
  std::vector<std::byte> buf(64);
  const std::span<std::byte> into(buf);
  co_return co_await c->end->read_some(into, op_timeout);
}

struct pair_under_test {
  std::unique_ptr<tls::tls_stream> server;
  fault_stream* transport = nullptr;  // owned by server
  std::unique_ptr<tls_client> client;
};

pair_under_test make_pair_under_test(io::context& ctx, fault_counter* counter) {
  auto [a, b] = fault_stream::make_pair(ctx, counter);
  pair_under_test p;
  p.transport = a.get();
  p.server = std::make_unique<tls::tls_stream>(std::unique_ptr<io::stream>(std::move(a)),
                                               server_tls().new_session(), std::span<const std::byte>());
  p.client = std::make_unique<tls_client>(std::move(b));
  return p;
}

coro::task<void> server_handshake(tls::tls_stream* s, io::context* ctx, std::error_code* out) {
  *out = co_await s->handshake(ctx, op_timeout);
}

// Both handshakes at once: the server's in a scope, the client's here.
coro::task<void> handshake_both(pair_under_test* p, io::context* ctx, std::error_code* server,
                                std::error_code* client) {
  coro::scope sc;
  sc.spawn(server_handshake(p->server.get(), ctx, server));
  *client = co_await client_handshake(p->client.get());
  co_await sc.join();
}

coro::task<void> server_write(tls::tls_stream* s, std::string data, io::io_result* out) {
  const std::span<const std::byte> bytes = std::as_bytes(std::span(data.data(), data.size()));
  *out = co_await s->write_all(bytes, op_timeout);
}

// A tunnel's reading direction: plaintext until EOF or an error.
coro::task<void> server_read_to_eof(tls::tls_stream* s, std::string* got, std::error_code* ec) {
  std::vector<std::byte> buf(4096);
  for (int i = 0; i < 10'000; ++i) {
    const std::span<std::byte> into(buf);
    const io::io_result r = co_await s->read_some(into, 5s);
    if (r.ec || r.bytes == 0) {
      *ec = r.ec;
      co_return;
    }
    got->append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
}

// Waits (through the loop) until `done` holds, at most `ticks` timer waits of 1 ms.
template <class Predicate>
coro::task<bool> settle(io::context* ctx, Predicate done, int ticks) {
  io::timer t(*ctx);
  for (int i = 0; i < ticks && !done(); ++i) co_await t.wait(1ms);
  co_return done();
}

struct key_update_run {
  std::error_code server_hs, client_hs, client_write, server_read, client_close;
  bool writing_when_sent = false;
  bool writing_when_read = false;
  std::string server_got;
  io::io_result bulk_write, shutdown_write;
  client_read client;
};

coro::task<void> key_update_during_a_send(io::context* ctx, pair_under_test* p, key_update_run* out) {
  co_await handshake_both(p, ctx, &out->server_hs, &out->client_hs);
  if (out->server_hs || out->client_hs) co_return;
  p->transport->set_capacity(small_capacity);
  coro::scope sc;
  sc.spawn(server_read_to_eof(p->server.get(), &out->server_got, &out->server_read));
  sc.spawn(server_write(p->server.get(), pattern(bulk), &out->bulk_write));
  fault_stream* t = p->transport;
  out->writing_when_sent = co_await settle(
      ctx, [t] { return t->writing(); }, 1000);
  // The client asks for a KeyUpdate while the server's bulk write waits for it to read: the server
  // answers with one of its own (OpenSSL 3 sends it with its next write).
  if (SSL_key_update(p->client->ssl.get(), SSL_KEY_UPDATE_REQUESTED) != 1)
    out->client_write = protocol_error();
  if (!out->client_write) out->client_write = co_await client_write(p->client.get(), "ping");
  std::string* got = &out->server_got;
  (void)co_await settle(
      ctx, [got] { return !got->empty(); }, 1000);
  out->writing_when_read = t->writing();
  co_await client_read_until(p->client.get(), bulk, &out->client);
  out->client_close = co_await client_close(p->client.get());  // ends the server's reader
  co_await sc.join();
}

// TLS records in `raw` (ciphertext as the client received it): false if the framing breaks, as it
// does when two transport writes interleave.
bool parse_records(const std::string& raw, int* alerts) {
  std::size_t at = 0;
  while (at + 5 <= raw.size()) {
    const auto type = static_cast<unsigned char>(raw[at]);
    const std::size_t len =
        (static_cast<unsigned char>(raw[at + 3]) << 8) | static_cast<unsigned char>(raw[at + 4]);
    if (type < 20 || type > 23 || raw[at + 1] != 3) return false;
    if (type == 21) ++*alerts;
    at += 5 + len;
  }
  return at == raw.size();
}

coro::task<void> client_raw_to_eof(tls_client* c, std::string* raw, std::error_code* ec) {
  std::vector<std::byte> buf(16 * 1024);
  for (int i = 0; i < 100'000; ++i) {
    const std::span<std::byte> into(buf);
    const io::io_result r = co_await c->end->read_some(into, op_timeout);
    if (r.ec || r.bytes == 0) {
      *ec = r.ec;
      co_return;
    }
    raw->append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
}

struct alert_run {
  std::error_code server_hs, client_hs, client_raw, server_read;
  bool writing_when_sent = false;
  bool writing_after_read = false;
  io::io_result bulk_write;
  std::string raw;
};

// TLS 1.2: the client asks to renegotiate while the server's bulk write waits for it to read. The
// server's read answers with a no_renegotiation alert: OpenSSL writes during SSL_read, with a send
// in flight. (A TLS 1.3 KeyUpdate answer would not do: OpenSSL 3 defers it to the next write.)
coro::task<void> alert_during_a_send(io::context* ctx, pair_under_test* p, alert_run* out) {
  co_await handshake_both(p, ctx, &out->server_hs, &out->client_hs);
  if (out->server_hs || out->client_hs) co_return;
  p->transport->set_capacity(small_capacity);
  coro::scope reader, writer, drain;
  std::string ignored;
  reader.spawn(server_read_to_eof(p->server.get(), &ignored, &out->server_read));
  writer.spawn(server_write(p->server.get(), pattern(bulk), &out->bulk_write));
  fault_stream* t = p->transport;
  out->writing_when_sent = co_await settle(
      ctx, [t] { return t->writing(); }, 1000);
  tls_client* c = p->client.get();
  if (SSL_renegotiate(c->ssl.get()) == 1) (void)SSL_do_handshake(c->ssl.get());
  ERR_clear_error();
  (void)co_await client_flush(c);
  // The reader takes the ClientHello once the loop runs it; the write is still waiting for room.
  const std::size_t before = t->bytes_read();
  (void)co_await settle(
      ctx, [t, before] { return t->bytes_read() > before; }, 1000);
  out->writing_after_read = t->writing();
  drain.spawn(client_raw_to_eof(c, &out->raw, &out->client_raw));
  co_await writer.join();
  p->server->shutdown_send();  // close_notify, then EOF: the drain ends
  co_await drain.join();
  p->server->cancel();  // the reader waits for a client that says nothing more
  co_await reader.join();
}

struct shutdown_run {
  std::error_code server_hs, client_hs;
  bool shut_at_once = true;  // the transport was half-closed by shutdown_send() itself
  bool writing = false;
  io::io_result bulk_write;
  client_read client;
  io::io_result raw;
};

// shutdown_send() after the handshake, or (with_write) while a bulk write is in flight.
coro::task<void> shutdown_after(io::context* ctx, pair_under_test* p, bool with_write, shutdown_run* out) {
  co_await handshake_both(p, ctx, &out->server_hs, &out->client_hs);
  if (out->server_hs || out->client_hs) co_return;
  coro::scope sc;
  if (with_write) {
    p->transport->set_capacity(small_capacity);
    sc.spawn(server_write(p->server.get(), pattern(bulk), &out->bulk_write));
    fault_stream* t = p->transport;
    out->writing = co_await settle(
        ctx, [t] { return t->writing(); }, 1000);
  }
  p->server->shutdown_send();
  out->shut_at_once = p->transport->send_shut();
  co_await client_read_until(p->client.get(), 0, &out->client);
  out->raw = co_await client_raw_read(p->client.get());
  co_await sc.join();
}

coro::task<void> silent_client_handshake(io::context* ctx, pair_under_test* p, std::error_code* out) {
  *out = co_await p->server->handshake(ctx, 50ms);
}

struct side_outcome {
  std::error_code ec;
  bool ended = false;
};

// The server's side of one exchange: handshake, "ping\n" in, "pong\n" out, close_notify and
// half-close, then the client's EOF. Destroys the server at the end, as a connection does.
coro::task<void> serve_exchange(std::unique_ptr<tls::tls_stream>* sp, io::context* ctx, side_outcome* out) {
  tls::tls_stream* s = sp->get();
  std::error_code ec = co_await s->handshake(ctx, op_timeout);
  std::string request;
  std::vector<std::byte> buf(1024);
  for (int i = 0; !ec && request.find('\n') == std::string::npos && i < 100; ++i) {
    const std::span<std::byte> into(buf);
    const io::io_result r = co_await s->read_some(into, op_timeout);
    ec = r.ec ? r.ec : (r.bytes == 0 ? aborted() : std::error_code{});
    request.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
  if (!ec && request != "ping\n") ec = protocol_error();
  if (!ec) {
    const std::string_view response = "pong\n";
    const std::span<const std::byte> bytes = std::as_bytes(std::span(response.data(), response.size()));
    ec = (co_await s->write_all(bytes, op_timeout)).ec;
  }
  if (!ec) {
    s->shutdown_send();
    const std::span<std::byte> into(buf);
    const io::io_result r = co_await s->read_some(into, op_timeout);
    ec = r.ec ? r.ec : (r.bytes != 0 ? protocol_error() : std::error_code{});
  }
  out->ec = ec;
  out->ended = true;
  sp->reset();
}

coro::task<void> client_exchange(std::unique_ptr<tls_client>* cp, side_outcome* out) {
  tls_client* c = cp->get();
  std::error_code ec = co_await client_handshake(c);
  if (!ec) ec = co_await client_write(c, "ping\n");
  if (!ec) {
    client_read response;
    co_await client_read_until(c, 5, &response);
    ec = response.ec ? response.ec : (response.data != "pong\n" ? protocol_error() : std::error_code{});
  }
  if (!ec) {
    client_read close;
    co_await client_read_until(c, 0, &close);
    ec = close.ec ? close.ec
                  : (!close.close_notify || !close.data.empty() ? protocol_error() : std::error_code{});
  }
  if (!ec) ec = co_await client_close(c);
  out->ec = ec;
  out->ended = true;
  cp->reset();
}

coro::task<void> exchange(io::context* ctx, pair_under_test* p, side_outcome* server, side_outcome* client) {
  coro::scope sc;
  sc.spawn(serve_exchange(&p->server, ctx, server));
  sc.spawn(client_exchange(&p->client, client));
  co_await sc.join();
}

// What the runs of a sweep ended in.
struct sweep_tally {
  std::size_t runs = 0, fired = 0, bad = 0;
};

void sweep_once(io::context& ctx, fault_counter& counter, sweep_tally* tally) {
  pair_under_test p = make_pair_under_test(ctx, &counter);
  side_outcome server, client;
  test::run(ctx, exchange(&ctx, &p, &server, &client), 10s);
  ++tally->runs;
  const bool fired = counter.fired();
  tally->fired += fired ? 1 : 0;
  // A clean run succeeds on both sides; a failed operation ends its side, or the other, in an error.
  const bool ok = server.ended && client.ended && p.server == nullptr && p.client == nullptr &&
                  (fired ? (server.ec || client.ec) : (!server.ec && !client.ec));
  if (!ok) ++tally->bad;
  BOOST_TEST(ok, "operation " << counter.fails_at() << " failing with " << counter.error().message()
                              << ": server " << server.ec.message() << (server.ended ? "" : " (not ended)")
                              << ", client " << client.ec.message() << (client.ended ? "" : " (not ended)"));
}

struct joined_run {
  std::error_code server_hs, client_hs;
  io::io_result write;
  std::size_t first_read = 0;  // the plaintext of the client's first SSL_read: one record's
  client_read client;
};

// A response head and its short body, written together, as the proxy's relay writes them.
coro::task<void> head_and_body_written_together(io::context* ctx, pair_under_test* p, joined_run* out) {
  co_await handshake_both(p, ctx, &out->server_hs, &out->client_hs);
  if (out->server_hs || out->client_hs) co_return;
  static constexpr char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n";
  static constexpr char body[] = "hello from bench!\n";
  const io::const_buffer pieces[2] = {{head, sizeof head - 1}, {body, sizeof body - 1}};
  out->write = co_await p->server->write_all(std::span<const io::const_buffer>(pieces), op_timeout);
  // One SSL_read returns one record's plaintext at most.
  std::vector<char> buf(16 * 1024);
  for (int step = 0; step < 100 && out->first_read == 0; ++step) {
    std::size_t n = 0;
    if (SSL_read_ex(p->client->ssl.get(), buf.data(), buf.size(), &n) == 1) {
      out->first_read = n;
      out->client.data.assign(buf.data(), n);
      break;
    }
    ERR_clear_error();
    const io::io_result r = co_await client_fill(p->client.get());
    if (r.ec || r.bytes == 0) co_return;
  }
  co_await client_read_until(p->client.get(), sizeof head - 1 + sizeof body - 1, &out->client);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_stream_over_memory)

CPROXY_IO_TEST_CASE(a_key_update_during_a_send_is_answered_without_overlapping_writes) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  key_update_run run;
  test::run(*ctx, key_update_during_a_send(ctx.get(), &p, &run), 30s);
  BOOST_TEST(!run.server_hs);
  BOOST_TEST(!run.client_hs);
  BOOST_TEST(run.writing_when_sent);
  BOOST_TEST(!run.client_write);
  BOOST_TEST(run.server_got == "ping");
  BOOST_TEST(run.writing_when_read, "the KeyUpdate was read while the bulk write was in flight");
  BOOST_TEST(p.client->key_updates_received >= 1, "the server answered the KeyUpdate");
  BOOST_TEST(p.transport->overlapping_writes() == 0u);
  BOOST_TEST(p.transport->overlapping_reads() == 0u);
  BOOST_TEST(!run.bulk_write.ec);
  BOOST_TEST(run.bulk_write.bytes == bulk);
  BOOST_TEST(!run.client.ec);
  BOOST_TEST((run.client.data == pattern(bulk)), "the client read " << run.client.data.size() << " bytes");
  BOOST_TEST(!run.client_close);
  BOOST_TEST(!run.server_read, run.server_read.message());
}

CPROXY_IO_TEST_CASE(an_alert_written_by_a_read_during_a_send_waits_for_the_send) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  SSL_set_max_proto_version(p.client->ssl.get(), TLS1_2_VERSION);
  alert_run run;
  test::run(*ctx, alert_during_a_send(ctx.get(), &p, &run), 30s);
  BOOST_TEST(!run.server_hs);
  BOOST_TEST(!run.client_hs);
  BOOST_TEST(run.writing_when_sent);
  BOOST_TEST(run.writing_after_read, "the read that wrote the alert ran while the bulk write was in flight");
  BOOST_TEST(p.transport->overlapping_writes() == 0u);
  BOOST_TEST(!run.bulk_write.ec, run.bulk_write.ec.message());
  BOOST_TEST(run.bulk_write.bytes == bulk);
  BOOST_TEST(!run.client_raw, run.client_raw.message());
  int alerts = 0;
  BOOST_TEST(parse_records(run.raw, &alerts), "the ciphertext is whole TLS records");
  BOOST_TEST(alerts == 2, "no_renegotiation, then close_notify");
  BOOST_TEST(run.raw.size() > bulk);
  BOOST_TEST(io::is_cancelled(run.server_read), run.server_read.message());
}

CPROXY_IO_TEST_CASE(shutdown_send_sends_close_notify_then_half_closes) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  shutdown_run run;
  test::run(*ctx, shutdown_after(ctx.get(), &p, false, &run), 10s);
  BOOST_TEST(!run.server_hs);
  BOOST_TEST(!run.client_hs);
  BOOST_TEST(run.shut_at_once);
  BOOST_TEST(!run.client.ec, run.client.ec.message());
  BOOST_TEST(run.client.close_notify);
  BOOST_TEST(run.client.data.empty());
  BOOST_TEST(!run.raw.ec);
  BOOST_TEST(run.raw.bytes == 0u, "EOF after close_notify");
}

CPROXY_IO_TEST_CASE(shutdown_send_during_a_write_waits_for_it) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  shutdown_run run;
  test::run(*ctx, shutdown_after(ctx.get(), &p, true, &run), 30s);
  BOOST_TEST(!run.server_hs);
  BOOST_TEST(!run.client_hs);
  BOOST_TEST(run.writing);
  BOOST_TEST(!run.shut_at_once, "the half-close waits for the write in flight");
  BOOST_TEST(!run.bulk_write.ec);
  BOOST_TEST(run.bulk_write.bytes == bulk);
  BOOST_TEST(!run.client.ec, run.client.ec.message());
  BOOST_TEST((run.client.data == pattern(bulk)), "the client read " << run.client.data.size() << " bytes");
  BOOST_TEST(run.client.close_notify);
  BOOST_TEST(!run.raw.ec);
  BOOST_TEST(run.raw.bytes == 0u, "EOF after close_notify");
  BOOST_TEST(p.transport->overlapping_writes() == 0u);
}

CPROXY_IO_TEST_CASE(a_handshake_with_a_silent_client_times_out) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  std::error_code ec;
  test::run(*ctx, silent_client_handshake(ctx.get(), &p, &ec), 10s);
  BOOST_TEST(io::is_timeout(ec), ec.message());
}

CPROXY_IO_TEST_CASE(every_failed_transport_operation_of_an_exchange_ends_in_an_error) {
  auto ctx = io::make_context(Backend::kind);
  for (const std::error_code fault : {fault_counter::connection_reset(), fault_counter::timeout()}) {
    sweep_tally tally;
    const std::size_t total =
        test::sweep([&](fault_counter& counter) { sweep_once(*ctx, counter, &tally); }, fault);
    BOOST_TEST_MESSAGE("sweep with " << fault.message() << ": " << total << " operations");
    BOOST_TEST(total >= 10u, "a handshake, a request, a response and a close use at least 10 operations");
    BOOST_TEST(tally.runs == total + 1);
    BOOST_TEST(tally.fired == total);
    BOOST_TEST(tally.bad == 0u);
  }
}

// Pieces written together (a head and a short body) go out as one record, so a client reads the whole
// response with one SSL_read instead of one per piece (a turn of its event loop each).
CPROXY_IO_TEST_CASE(pieces_written_together_go_out_as_one_record) {
  auto ctx = io::make_context(Backend::kind);
  pair_under_test p = make_pair_under_test(*ctx, nullptr);
  joined_run run;
  test::run(*ctx, head_and_body_written_together(ctx.get(), &p, &run), 10s);
  BOOST_TEST(!run.server_hs);
  BOOST_TEST(!run.client_hs);
  BOOST_TEST(!run.write.ec, run.write.ec.message());
  BOOST_TEST(run.write.bytes == 57u);
  BOOST_TEST(!run.client.ec, run.client.ec.message());
  BOOST_TEST(run.client.data == "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\nhello from bench!\n");
  BOOST_TEST(run.first_read == 57u, "the first SSL_read got " << run.first_read << " bytes");
}

BOOST_AUTO_TEST_SUITE_END()
