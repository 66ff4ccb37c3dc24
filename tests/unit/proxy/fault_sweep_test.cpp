// Fault injection through the whole pipeline in process: proxy::serve_client over an in-memory client
// stream, an upstream_connector fake whose upstreams are in-memory too (support/fault_stream.hpp), and
// a sweep failing each operation (connect, read, write) of a GET, a chunked POST, a WebSocket upgrade,
// a CONNECT and an HTTPS GET (tls_stream) once, with a reset and with a timeout (the pipeline's timers
// are its operations' timeouts), on each backend. Every run must end with the contract's answer or a
// clean close, every coroutine finished, and both connections released.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "connect/core/log.hpp"
#include "connect/core/published.hpp"
#include "connect/coro/scope.hpp"
#include "connect/route/table.hpp"
#include "connect/tls/certificate.hpp"
#include "connect/tls/server_context.hpp"
#include "connect/tls/tls_stream.hpp"
#include "proxy/connection.hpp"
#include "proxy/upstream_connector.hpp"
#include "support/backends.hpp"
#include "support/fault_stream.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace proxy = cproxy::proxy;
namespace route = cproxy::route;
namespace test = cproxy::test;
namespace tls = cproxy::tls;
using test::fault_counter;
using test::fault_kind;
using test::fault_stream;

namespace {

// No run needs one of the proxy's own timeouts to fire (a timeout fault stands in for each), so they
// are longer than the scripted peers': a peer that runs into its own timeout means the proxy held a
// connection it should have answered or let go. The watchdog ends a run that hangs altogether.
constexpr io::duration proxy_timeout = 30s;
constexpr io::duration peer_timeout = 4s;
constexpr io::duration run_limit = 20s;

enum class workload { get, chunked_post, websocket, connect, https_get };

const char* name_of(workload w) {
  switch (w) {
    case workload::get:
      return "GET";
    case workload::chunked_post:
      return "chunked POST";
    case workload::websocket:
      return "WebSocket upgrade";
    case workload::connect:
      return "CONNECT";
    case workload::https_get:
      return "HTTPS GET";
  }
  return "?";
}

constexpr std::string_view response_body = "hello world";
constexpr std::string_view post_payload = "hello chunked world";
// A masked WebSocket text frame ("hello"), as a browser sends it: the tunnel carries it unchanged.
constexpr std::string_view ws_frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
// What the service sends unasked right after its 101 (a text frame "hi"), so both directions of the
// tunnel carry bytes at once.
constexpr std::string_view ws_push = "\x81\x02hi";
constexpr std::string_view tunnel_bytes = "ping through the tunnel";

// How a scripted peer's last operation ended.
enum class end_how { running, done, eof, error, own_fault, real_timeout };

const char* name_of(end_how h) {
  switch (h) {
    case end_how::running:
      return "running";
    case end_how::done:
      return "done";
    case end_how::eof:
      return "eof";
    case end_how::error:
      return "error";
    case end_how::own_fault:
      return "own fault";
    case end_how::real_timeout:
      return "real timeout";
  }
  return "?";
}

// One scripted end of a fault_stream pair: the bytes it read and not used yet, and how it ended.
struct peer {
  explicit peer(fault_stream* stream) : s(stream) {}
  fault_stream* s;
  std::string in;
  end_how how = end_how::running;
  std::error_code ec;
};

void note_end(peer* p, std::error_code ec, std::size_t faults_before) {
  p->ec = ec;
  if (p->s->faults() > faults_before) {
    p->how = end_how::own_fault;  // the injected failure hit this peer: it gives up, as a real one would
  } else if (!ec) {
    p->how = end_how::eof;
  } else if (io::is_timeout(ec)) {
    p->how = end_how::real_timeout;
  } else {
    p->how = end_how::error;
  }
}

coro::task<bool> read_more(peer* p) {
  std::array<std::byte, 4096> buf;
  const std::span<std::byte> into(buf);
  const std::size_t faults = p->s->faults();
  const io::io_result r = co_await p->s->read_some(into, peer_timeout);
  if (!r.ec && r.bytes > 0) {
    p->in.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
    co_return true;
  }
  note_end(p, r.ec, faults);
  co_return false;
}

coro::task<bool> send(peer* p, std::string data) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data.data()), data.size());
  const std::size_t faults = p->s->faults();
  const io::io_result r = co_await p->s->write_all(bytes, peer_timeout);
  if (!r.ec) co_return true;
  note_end(p, r.ec, faults);
  co_return false;
}

// Reads until `p->in` holds `delim`; returns the offset just past it, or npos when the stream ended.
// `delim`: a string literal.
coro::task<std::size_t> read_through(peer* p, const char* delim) {
  const std::string_view d(delim);
  for (int i = 0; i < 1000; ++i) {
    const std::size_t at = p->in.find(d);
    if (at != std::string::npos) co_return at + d.size();
    const bool more = co_await read_more(p);
    if (!more) co_return std::string::npos;
  }
  co_return std::string::npos;
}

coro::task<bool> read_at_least(peer* p, std::size_t n) {
  for (int i = 0; i < 1000 && p->in.size() < n; ++i) {
    const bool more = co_await read_more(p);
    if (!more) co_return false;
  }
  co_return p->in.size() >= n;
}

// Reads until the stream ends; the way it ends is the point.
coro::task<void> read_to_end(peer* p) {
  for (int i = 0; i < 1000; ++i) {
    const bool more = co_await read_more(p);
    if (!more) co_return;
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Content-Length of a head, or npos.
std::size_t content_length(std::string_view head) {
  const std::string l = lower(head);
  const std::size_t at = l.find("\r\ncontent-length:");
  if (at == std::string::npos) return std::string::npos;
  return static_cast<std::size_t>(std::stoul(l.substr(at + 17)));
}

// What one run saw. Filled by the scripts, the pipeline's wrapper and the connector fake.
struct run_record {
  // The client.
  bool client_finished = false;
  end_how client_end = end_how::running;
  std::error_code client_ec;
  unsigned status = 0;
  bool complete = false;  // the whole answer: its body by Content-Length, or the tunnel's echo
  std::string body;
  std::size_t client_faults = 0;
  // The pipeline.
  bool server_finished = false;
  std::size_t proxy_client_faults = 0;
  // The upstreams (one per dial).
  std::size_t dials = 0;
  std::size_t connect_faults = 0;
  std::size_t upstreams_started = 0;
  std::size_t upstreams_finished = 0;
  std::size_t proxy_upstream_ends_released = 0;
  std::size_t given_back = 0;
  std::size_t upstream_faults = 0;  // the scripts' ends and the pipeline's ends of upstream pairs
  bool upstream_got_request = false;
  std::vector<end_how> upstream_ends;
  // Every fault_stream end.
  std::size_t overlaps = 0;
};

void note_stream(run_record* rec, const fault_stream& s) {
  rec->overlaps += s.overlapping_reads() + s.overlapping_writes();
}

std::string request_head(workload w) {
  switch (w) {
    case workload::get:
    case workload::https_get:
      return "GET /hello HTTP/1.1\r\nHost: api.localhost\r\nUser-Agent: sweep\r\n\r\n";
    case workload::chunked_post:
      return "POST /upload HTTP/1.1\r\nHost: api.localhost\r\nTransfer-Encoding: chunked\r\n"
             "Content-Type: text/plain\r\n\r\n";
    case workload::websocket:
      return "GET /socket HTTP/1.1\r\nHost: api.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    case workload::connect:
      return "CONNECT api.localhost:443 HTTP/1.1\r\nHost: api.localhost:443\r\n\r\n";
  }
  return {};
}

// The chunked body, in the writes the client makes: a chunk extension and a trailer included.
const std::vector<std::string>& post_pieces() {
  static const std::vector<std::string> pieces{"6\r\nhello \r\n", "8;ext=1\r\nchunked \r\n5\r\nworld\r\n",
                                               "0\r\nX-Trailer: t\r\n\r\n"};
  return pieces;
}

// The client: sends the request, reads the answer, and for a tunnel sends bytes and reads them back.
// Any failure of its own ends it (it closes, as a client that gave up does).
coro::task<void> client_script(std::unique_ptr<fault_stream> s, workload w, run_record* rec) {
  peer p(s.get());
  std::string head_out = request_head(w);
  bool ok = co_await send(&p, std::move(head_out));
  if (ok && w == workload::chunked_post) {
    for (const std::string& piece : post_pieces()) {
      std::string copy = piece;
      ok = co_await send(&p, std::move(copy));
      if (!ok) break;
    }
  }
  // A proxy that answers before the whole request went (a 502 while the body is still coming) closes
  // its side: the write fails, but the answer is there to read, as it is for an HTTP client.
  if (!ok && p.how != end_how::own_fault) {
    p.how = end_how::running;
    ok = true;
  }
  std::size_t head_end = std::string::npos;
  if (ok) head_end = co_await read_through(&p, "\r\n\r\n");
  if (head_end != std::string::npos && p.in.size() >= 12 && p.in.compare(0, 9, "HTTP/1.1 ") == 0) {
    rec->status = static_cast<unsigned>(std::stoul(p.in.substr(9, 3)));
    const std::string head = p.in.substr(0, head_end);
    p.in.erase(0, head_end);
    const bool tunnel =
        (w == workload::websocket && rec->status == 101) || (w == workload::connect && rec->status == 200);
    if (tunnel) {
      const std::string_view out = w == workload::websocket ? ws_frame : tunnel_bytes;
      std::string bytes(out);
      ok = co_await send(&p, std::move(bytes));
      const std::string expected = std::string(w == workload::websocket ? ws_push : "") + std::string(out);
      if (ok) ok = co_await read_at_least(&p, expected.size());
      rec->complete = ok && p.in == expected;
    } else {
      const std::size_t length = content_length(head);
      if (length != std::string::npos) {
        ok = co_await read_at_least(&p, length);
        rec->complete = ok && p.in.size() == length;
        rec->body = p.in;
      }
    }
  }
  if (p.how == end_how::running) p.how = end_how::done;
  rec->client_end = p.how;
  rec->client_ec = p.ec;
  rec->client_faults = s->faults();
  note_stream(rec, *s);
  rec->client_finished = true;
}

// The pipeline's end of a connection (the client's, or an upstream's from the connector): notes its
// faults and overlaps when the pipeline lets it go, and gives cancel() a socket's meaning.
class pipeline_end final : public io::stream {
 public:
  pipeline_end(std::unique_ptr<fault_stream> s, io::context* ctx, run_record* rec, bool upstream)
      : s_(std::move(s)), ctx_(ctx), rec_(rec), upstream_(upstream) {}
  pipeline_end(const pipeline_end&) = delete;
  pipeline_end& operator=(const pipeline_end&) = delete;
  ~pipeline_end() override {
    *alive_ = false;
    if (upstream_) {
      ++rec_->proxy_upstream_ends_released;
      rec_->upstream_faults += s_->faults();
    } else {
      rec_->proxy_client_faults = s_->faults();
    }
    note_stream(rec_, *s_);
  }

  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration timeout) override {
    const in_flight op(&reading_, &reads_started_);
    co_return co_await s_->read_some(buf, timeout);
  }
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration timeout) override {
    const in_flight op(&writing_, &writes_started_);
    co_return co_await s_->write_all(buf, timeout);
  }
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration timeout) override {
    const in_flight op(&writing_, &writes_started_);
    co_return co_await s_->write_all(bufs, timeout);
  }
  std::size_t try_write(std::span<const std::byte> buf) noexcept override { return s_->try_write(buf); }
  // A socket's cancel() ends every operation in flight; fault_stream's misses one still on its first
  // trip through the loop (it starts waiting after that trip). So cancel once more after that trip,
  // if the operations in flight now still are: else a pipeline that cancels as it must would wait here
  // for a timeout a socket would not make it wait for.
  void cancel() noexcept override {
    s_->cancel();
    if (reading_ == 0 && writing_ == 0) return;
    try {
      ctx_->post([alive = alive_, self = this, reads = reads_started_, writes = writes_started_] {
        if (!*alive) return;
        const bool same_read = self->reading_ > 0 && self->reads_started_ == reads;
        const bool same_write = self->writing_ > 0 && self->writes_started_ == writes;
        if (same_read || same_write) self->s_->cancel();
      });
    } catch (...) {
      // No memory for the second cancel: the operation then ends by its timeout.
    }
  }
  void shutdown_send() noexcept override { s_->shutdown_send(); }
  io::socket* plain_socket() noexcept override { return nullptr; }

 private:
  struct in_flight {
    int* n;
    in_flight(int* count, std::uint64_t* started) noexcept : n(count) {
      ++*n;
      ++*started;
    }
    in_flight(const in_flight&) = delete;
    in_flight& operator=(const in_flight&) = delete;
    ~in_flight() { --*n; }
  };

  std::unique_ptr<fault_stream> s_;
  io::context* ctx_;
  run_record* rec_;
  bool upstream_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  int reading_ = 0;
  int writing_ = 0;
  std::uint64_t reads_started_ = 0;
  std::uint64_t writes_started_ = 0;
};

// The proxy's side of the client connection: serve_client owns nothing, so this frame holds the
// stream and closes it when the pipeline is done, as serve_connection does with its socket.
coro::task<void> serve(std::unique_ptr<fault_stream> s, io::context* ctx, const proxy::server_env* env,
                       proxy::worker_env* worker, run_record* rec) {
  {
    pipeline_end end(std::move(s), ctx, rec, false);
    std::string ip = "127.0.0.1";
    coro::task<void> pipeline = proxy::serve_client(&end, std::move(ip), false, env, worker);
    co_await std::move(pipeline);
  }
  rec->server_finished = true;
}

// One CA and leaf for the suite: key generation is the slow part.
tls::server_context& server_tls() {
  static const auto now = std::chrono::system_clock::now();
  static const auto ca = std::make_shared<const tls::key_pair>(tls::make_ca({"test"}, now));
  static tls::server_context context{
      tls::server_identity{tls::mint_leaf(*ca, {"localhost"}, now), ca, {"test"}}};
  return context;
}

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};

// A TLS client over memory BIOs whose ciphertext goes through a scripted peer. No SNI: the server
// answers with its start-up leaf, so no run waits for the minting thread (the operations of every run
// stay in one order); no certificate check: the chain is not what this test is about.
struct tls_client {
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx{SSL_CTX_new(TLS_client_method())};
  tls::ssl_ptr ssl;
  BIO* in = nullptr;   // owned by ssl
  BIO* out = nullptr;  // owned by ssl
  peer* p;
  std::string plain;  // plaintext read and not used yet

  explicit tls_client(peer* raw) : p(raw) {
    ssl.reset(SSL_new(ctx.get()));
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl.get(), in, out);
    SSL_set_connect_state(ssl.get());
  }
};

// What OpenSSL wrote, onto the transport.
coro::task<bool> tls_flush(tls_client* c) {
  for (std::size_t pending = BIO_ctrl_pending(c->out); pending > 0; pending = BIO_ctrl_pending(c->out)) {
    std::string buf(pending, '\0');
    const int n = BIO_read(c->out, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) break;
    buf.resize(static_cast<std::size_t>(n));
    const bool sent = co_await send(c->p, std::move(buf));
    if (!sent) co_return false;
  }
  co_return true;
}

// Ciphertext from the transport into the input BIO.
coro::task<bool> tls_fill(tls_client* c) {
  const bool more = co_await read_more(c->p);
  if (!more) co_return false;
  BIO_write(c->in, c->p->in.data(), static_cast<int>(c->p->in.size()));
  c->p->in.clear();
  co_return true;
}

// An OpenSSL failure ends the client as an error (the server broke the protocol or the connection).
bool tls_failed(tls_client* c, int rc) {
  const int err = SSL_get_error(c->ssl.get(), rc);
  if (err == SSL_ERROR_WANT_READ) return false;
  ERR_clear_error();
  c->p->how = err == SSL_ERROR_ZERO_RETURN ? end_how::eof : end_how::error;
  c->p->ec = std::make_error_code(std::errc::protocol_error);
  return true;
}

coro::task<bool> tls_handshake(tls_client* c) {
  for (int step = 0; step < 100; ++step) {
    const int rc = SSL_do_handshake(c->ssl.get());
    const bool flushed = co_await tls_flush(c);
    if (!flushed) co_return false;
    if (rc == 1) co_return true;
    if (tls_failed(c, rc)) co_return false;
    const bool filled = co_await tls_fill(c);
    if (!filled) co_return false;
  }
  co_return false;
}

coro::task<bool> tls_send(tls_client* c, std::string data) {
  std::size_t n = 0;
  if (SSL_write_ex(c->ssl.get(), data.data(), data.size(), &n) != 1) {
    tls_failed(c, 0);
    co_return false;
  }
  co_return co_await tls_flush(c);
}

// One record's plaintext (or more) into c->plain.
coro::task<bool> tls_read_more(tls_client* c) {
  std::array<char, 4096> buf;
  for (int step = 0; step < 1000; ++step) {
    std::size_t n = 0;
    const int rc = SSL_read_ex(c->ssl.get(), buf.data(), buf.size(), &n);
    if (rc == 1) {
      c->plain.append(buf.data(), n);
      co_return true;
    }
    if (tls_failed(c, rc)) co_return false;
    const bool flushed = co_await tls_flush(c);
    if (!flushed) co_return false;
    const bool filled = co_await tls_fill(c);
    if (!filled) co_return false;
  }
  co_return false;
}

// The HTTPS client: a handshake, then the GET, then the answer read whole; closes with close_notify.
coro::task<void> https_client_script(std::unique_ptr<fault_stream> s, run_record* rec) {
  peer p{s.get()};
  tls_client c(&p);
  bool ok = co_await tls_handshake(&c);
  if (ok) {
    std::string head_out = request_head(workload::get);
    ok = co_await tls_send(&c, std::move(head_out));
  }
  std::size_t head_end = std::string::npos;
  for (int i = 0; ok && i < 1000; ++i) {
    head_end = c.plain.find("\r\n\r\n");
    if (head_end != std::string::npos) break;
    ok = co_await tls_read_more(&c);
  }
  if (ok && head_end != std::string::npos && c.plain.compare(0, 9, "HTTP/1.1 ") == 0) {
    rec->status = static_cast<unsigned>(std::stoul(c.plain.substr(9, 3)));
    const std::string head = c.plain.substr(0, head_end + 4);
    c.plain.erase(0, head_end + 4);
    const std::size_t length = content_length(head);
    for (int i = 0; ok && length != std::string::npos && c.plain.size() < length && i < 1000; ++i)
      ok = co_await tls_read_more(&c);
    rec->complete = length != std::string::npos && c.plain.size() == length;
    rec->body = c.plain;
  }
  if (p.how == end_how::running) {
    p.how = end_how::done;
    if (SSL_shutdown(c.ssl.get()) < 0) ERR_clear_error();
    co_await tls_flush(&c);
  }
  rec->client_end = p.how;
  rec->client_ec = p.ec;
  rec->client_faults = s->faults();
  note_stream(rec, *s);
  rec->client_finished = true;
}

// The proxy's side of an HTTPS connection: tls_accept over the in-memory transport, then the same
// pipeline, as serve_connection does on an HTTPS port.
coro::task<void> serve_https(std::unique_ptr<fault_stream> s, io::context* ctx, const proxy::server_env* env,
                             proxy::worker_env* worker, run_record* rec) {
  {
    auto transport = std::make_unique<pipeline_end>(std::move(s), ctx, rec, false);
    tls::tls_stream secure(std::unique_ptr<io::stream>(std::move(transport)), server_tls().new_session(),
                           std::span<const std::byte>());
    const std::error_code shaken = co_await secure.handshake(ctx, proxy_timeout);
    if (!shaken) {
      std::string ip = "127.0.0.1";
      coro::task<void> pipeline = proxy::serve_client(&secure, std::move(ip), true, env, worker);
      co_await std::move(pipeline);
    }
  }
  rec->server_finished = true;
}

// The in-memory service. It answers one request (a 200 with a body, a chunked body read whole first;
// a 101 then an echo), or echoes a CONNECT tunnel, then reads until the proxy closes its connection.
coro::task<void> upstream_script(std::unique_ptr<fault_stream> s, workload w, run_record* rec) {
  ++rec->upstreams_started;
  peer p(s.get());
  bool ok = true;
  if (w != workload::connect) {
    const std::size_t head_end = co_await read_through(&p, "\r\n\r\n");
    ok = head_end != std::string::npos;
    std::string head;
    if (ok) {
      head = p.in.substr(0, head_end);
      p.in.erase(0, head_end);
    }
    if (ok && w == workload::chunked_post) {
      const std::size_t body_end = co_await read_through(&p, "0\r\nX-Trailer: t\r\n\r\n");
      ok = body_end != std::string::npos;
      if (ok) {
        std::string expected;
        for (const std::string& piece : post_pieces()) expected += piece;
        rec->upstream_got_request = p.in.substr(0, body_end) == expected;
        p.in.erase(0, body_end);
      }
    } else if (ok) {
      rec->upstream_got_request = true;
    }
    if (ok && w == workload::websocket) {
      std::string switching =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
      ok = co_await send(&p, std::move(switching));
      std::string push(ws_push);
      if (ok) ok = co_await send(&p, std::move(push));
    } else if (ok) {
      // Head and body in two writes, so the body relay has a second read to fail.
      std::string head_part =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello";
      std::string rest = " world";
      ok = co_await send(&p, std::move(head_part));
      if (ok) ok = co_await send(&p, std::move(rest));
    }
  } else {
    rec->upstream_got_request = true;
  }
  if (ok && (w == workload::websocket || w == workload::connect)) {
    for (int i = 0; i < 1000 && ok; ++i) {
      if (p.in.empty()) ok = co_await read_more(&p);
      if (ok) {
        std::string echo = std::move(p.in);
        p.in.clear();
        ok = co_await send(&p, std::move(echo));
      }
    }
  } else if (ok) {
    co_await read_to_end(&p);
  }
  if (p.how == end_how::running) p.how = end_how::done;
  rec->upstream_ends.push_back(p.how);
  rec->upstream_faults += s->faults();
  note_stream(rec, *s);
  ++rec->upstreams_finished;
}

// Resumes the awaiting coroutine from the context's loop, as a real connect completes.
struct later {
  io::context* ctx;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    ctx->post([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

// The upstream_connector of a run: each connect() is one counted operation; a failed one is a refused
// connection (reset) or a connect timeout (timeout); else an in-memory pair whose far end the upstream
// script serves in `upstreams`, which the run joins.
class fake_connector final : public proxy::upstream_connector {
 public:
  fake_connector(io::context* ctx, fault_counter* counter, coro::scope* upstreams, workload w,
                 run_record* rec)
      : ctx_(ctx), counter_(counter), upstreams_(upstreams), w_(w), rec_(rec) {}

  coro::task<proxy::dial_result> connect(const route::route* r, io::duration, bool) override {
    ++rec_->dials;
    const std::error_code failed = counter_->next(fault_kind::connect);
    later next{ctx_};
    co_await next;
    proxy::dial_result d;
    if (failed) {
      ++rec_->connect_faults;
      d.failed = io::is_timeout(failed)
                     ? proxy::upstream_failure(proxy::failure_kind::connect_timeout)
                     : proxy::upstream_failure(proxy::failure_kind::refused, r->upstream_text());
      co_return d;
    }
    auto [mine, theirs] = fault_stream::make_pair(*ctx_, counter_);
    upstreams_->spawn(upstream_script(std::move(theirs), w_, rec_));
    d.stream = std::make_unique<pipeline_end>(std::move(mine), ctx_, rec_, true);
    co_return d;
  }
  void give_back(const route::route*, std::unique_ptr<io::stream> s) override {
    ++rec_->given_back;
    pool_.push_back(std::move(s));
  }
  void clear() noexcept override { pool_.clear(); }

 private:
  io::context* ctx_;
  fault_counter* counter_;
  coro::scope* upstreams_;
  workload w_;
  run_record* rec_;
  std::vector<std::unique_ptr<io::stream>> pool_;
};

struct fixture {
  proxy::server_options options;
  cproxy::published<route::table> routes;
  proxy::server_env env;

  fixture() : routes(make_table()), env{&options, 8080} {
    options.access_log = false;
    options.timeouts.header = proxy_timeout;
    options.timeouts.connect = proxy_timeout;
    options.timeouts.idle = proxy_timeout;
    options.timeouts.response = proxy_timeout;
    options.timeouts.tunnel_idle = proxy_timeout;
    options.timeouts.handshake = proxy_timeout;
  }

  static std::shared_ptr<const route::table> make_table() {
    route::route api;
    api.name = "api";
    api.host = "127.0.0.1";
    api.port = 9;  // never dialled: the connector is a fake
    std::vector<route::route> all{api};
    return std::make_shared<const route::table>(std::move(all));
  }
};

// One run: the client, the pipeline and the upstreams to their ends; then the pool is emptied, as a
// stopping worker does, so a connection given back is released too.
coro::task<void> one_run(io::context* ctx, fault_counter* counter, workload w, const fixture* fx,
                         run_record* rec) {
  proxy::worker_env worker(fx->routes);
  worker.ctx = ctx;
  coro::scope upstreams;
  worker.upstreams = std::make_unique<fake_connector>(ctx, counter, &upstreams, w, rec);
  auto [client_end, proxy_end] = fault_stream::make_pair(*ctx, counter);
  coro::scope pair;
  if (w == workload::https_get) {
    pair.spawn(https_client_script(std::move(client_end), rec));
    pair.spawn(serve_https(std::move(proxy_end), ctx, &fx->env, &worker, rec));
  } else {
    pair.spawn(client_script(std::move(client_end), w, rec));
    pair.spawn(serve(std::move(proxy_end), ctx, &fx->env, &worker, rec));
  }
  co_await pair.join();
  worker.upstreams->clear();
  co_await upstreams.join();
  worker.upstreams.reset();
}

bool success_status(workload w, unsigned status) {
  return status == (w == workload::websocket ? 101u : 200u);
}

// What a run must have ended with, given where its fault (if any) hit.
void check_run(workload w, const fault_counter& counter, const run_record& rec) {
  BOOST_TEST_CONTEXT("client ended: " << name_of(rec.client_end) << ", status " << rec.status) {
    // Nothing left suspended.
    BOOST_TEST(rec.client_finished);
    BOOST_TEST(rec.server_finished);
    BOOST_TEST(rec.upstreams_finished == rec.upstreams_started);
    // Both connections released: every upstream end the pipeline got is gone, and no peer had to wait
    // for its own timeout to find out.
    BOOST_TEST(rec.proxy_upstream_ends_released == rec.dials - rec.connect_faults);
    BOOST_TEST((rec.client_end != end_how::real_timeout), "the client waited for its own timeout");
    for (end_how h : rec.upstream_ends)
      BOOST_TEST((h != end_how::real_timeout), "an upstream waited for its own timeout");
    // The io::stream rule: one read and one write at a time per end.
    BOOST_TEST(rec.overlaps == 0u);
    BOOST_TEST(rec.dials <= 1u);

    const bool upstream_side = rec.connect_faults + rec.upstream_faults > 0;
    const bool client_side = rec.client_faults + rec.proxy_client_faults > 0;
    BOOST_TEST(counter.fired() == (upstream_side || client_side));
    if (!counter.fired()) {
      BOOST_TEST(success_status(w, rec.status));
      BOOST_TEST(rec.complete);
      BOOST_TEST(rec.upstream_got_request);
      if (w != workload::websocket && w != workload::connect) BOOST_TEST(rec.body == response_body);
      return;
    }
    if (rec.connect_faults > 0) {
      // A refused connect is a 502, one that timed out a 504; the upstream never saw anything.
      BOOST_TEST(rec.status == (io::is_timeout(counter.error()) ? 504u : 502u));
      BOOST_TEST(rec.complete);
      BOOST_TEST(rec.upstreams_started == 0u);
      return;
    }
    if (success_status(w, rec.status) && rec.complete) {
      // The fault hit nothing that mattered: the answer is whole, so the request reached the service.
      BOOST_TEST(rec.upstream_got_request);
      if (w != workload::websocket && w != workload::connect) BOOST_TEST(rec.body == response_body);
      return;
    }
    if (client_side) {
      // The client's connection failed: no gateway error is the client's, only a close (or the start
      // of the answer, when it failed while reading it).
      BOOST_TEST((rec.status == 0u || success_status(w, rec.status)));
      return;
    }
    // The upstream's side failed: the client always gets a status line, a gateway error before the
    // response started (whole), else the start of the answer and a close.
    const bool gateway = rec.status == 502u || rec.status == 504u;
    BOOST_TEST((gateway || success_status(w, rec.status)));
    if (gateway) BOOST_TEST(rec.complete);
  }
}

// The operations of a clean run, by kind.
struct op_counts {
  std::size_t total = 0, connects = 0, reads = 0, writes = 0;
};

// Sweeps every operation of `w` with `ec`; returns the operations of a clean run.
op_counts sweep_workload(io::context* ctx, const fixture* fx, workload w, std::error_code ec) {
  op_counts clean;
  clean.total = test::sweep(
      [&](fault_counter& counter) {
        BOOST_TEST_CONTEXT(name_of(w) << ", fault at operation " << counter.fails_at() << " of a sweep with "
                                      << counter.error().message()) {
          run_record rec;
          test::run(*ctx, one_run(ctx, &counter, w, fx, &rec), run_limit);
          check_run(w, counter, rec);
        }
        if (counter.fails_at() == 0) {
          clean.connects = counter.count(fault_kind::connect);
          clean.reads = counter.count(fault_kind::read);
          clean.writes = counter.count(fault_kind::write);
        }
      },
      ec);
  return clean;
}

void sweep_all(io::backend_kind backend, const char* backend_name) {
  // Failure answers log a line each; a sweep would print hundreds.
  cproxy::log::set_min_level(cproxy::log::level::warn);
  auto ctx = io::make_context(backend);
  const fixture fx;
  for (workload w :
       {workload::get, workload::chunked_post, workload::websocket, workload::connect, workload::https_get}) {
    const op_counts resets = sweep_workload(ctx.get(), &fx, w, fault_counter::connection_reset());
    const op_counts timeouts = sweep_workload(ctx.get(), &fx, w, fault_counter::timeout());
    BOOST_TEST(resets.total > 0u);
    BOOST_TEST(resets.total == timeouts.total);
    BOOST_TEST(resets.connects == 1u);
    BOOST_TEST_MESSAGE(backend_name << ": " << name_of(w) << ": " << resets.total << " operations ("
                                    << resets.connects << " connect, " << resets.reads << " reads, "
                                    << resets.writes
                                    << " writes), each failed once with a reset and once with a timeout");
  }
  cproxy::log::set_min_level(cproxy::log::level::info);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_fault_sweep)

CPROXY_IO_TEST_CASE(every_operation_of_each_workload_fails_once) {
  sweep_all(Backend::kind, Backend::kind == io::backend_kind::uring ? "uring" : "asio");
}

BOOST_AUTO_TEST_SUITE_END()
