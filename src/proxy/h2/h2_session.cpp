// The HTTP/2 connection driver: a reader feeding nghttp2 what the client sends, a writer sending what
// nghttp2 queues, and one coroutine per stream running the pipeline (connection.cpp's serve_h2_stream)
// over an h2_stream. All on the connection's worker thread; nghttp2 is called from no other.
#include "h2_session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../client_side.hpp"
#include "../failure_answer.hpp"
#include "connect/core/log.hpp"
#include "connect/coro/scope.hpp"
#include "h2_stream.hpp"

namespace cproxy::proxy {
coro::task<void> serve_h2_stream(io::stream* s, const client_side* parent, std::string head);
}

namespace cproxy::proxy::h2 {
namespace {

constexpr std::uint32_t max_streams = 128;
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 16 * 1024 * 1024;
// Streams whose coroutine still runs count too: a client resetting streams as fast as it opens them
// (rapid reset) would otherwise start upstream requests without bound.
constexpr std::size_t live_stream_limit = 2 * max_streams;
constexpr std::size_t write_batch = 64 * 1024;
// Streams the client may reset (CVE-2023-44487, rapid reset): a burst of 1000, then 33 a second, the
// budget nghttp2 1.57 later adopted. Past it the connection ends with GOAWAY ENHANCE_YOUR_CALM.
constexpr double reset_burst = 1000;
constexpr double resets_per_second = 33;
constexpr std::size_t read_chunk = 16 * 1024;

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

class session {
 public:
  explicit session(client_side* c) : c_(c), writer_wake_(*c->w->ctx) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Request DATA is given back to the client's window as the pipeline reads it (h2_stream), so a
    // stream whose upstream is slow holds back only its own client.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_server_new2(&ng_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
  }
  ~session() { nghttp2_session_del(ng_); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  coro::task<void> run() {
    const std::array<nghttp2_settings_entry, 4> settings{{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(stream_window)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(header_list_limit)},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    }};
    nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, connection_window);
    coro::scope io_tasks;
    io_tasks.spawn(reader());
    io_tasks.spawn(writer());
    co_await io_tasks.join();
    // The connection is over: every stream still running sees its client gone.
    for (auto& [id, st] : streams_) st->peer_closed();
    co_await stream_tasks_.join();
    streams_.clear();
  }

 private:
  static session* self(void* user) { return static_cast<session*>(user); }
  static h2_stream* stream_of(nghttp2_session* ng, std::int32_t id) {
    return static_cast<h2_stream*>(nghttp2_session_get_stream_user_data(ng, id));
  }

  static int on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    session* s = self(user);
    if (s->streams_.size() >= live_stream_limit) {
      nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
      return 0;
    }
    auto st = std::make_unique<h2_stream>(ng, frame->hd.stream_id, *s->c_->w->ctx, &s->writer_wake_);
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st.get());
    s->streams_.emplace(frame->hd.stream_id, std::move(st));
    return 0;
  }

  static int on_header(nghttp2_session* ng, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                       void* user) {
    h2_stream* st = stream_of(ng, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      st->add_header(n, v);
    else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS)
      st->add_trailer(n, v);
    else
      return 0;
    if (st->block_bytes() > hpack_bomb_limit) self(user)->hpack_bomb();
    return 0;
  }

  static int on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_RST_STREAM) self(user)->count_reset();
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    h2_stream* st = stream_of(ng, frame->hd.stream_id);
    if (!st) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (self(user)->bombed_) return 0;  // the connection is ending: the stream never starts
      st->headers_done(end_stream);
      self(user)->ready_.push_back(frame->hd.stream_id);
    } else if (end_stream) {
      st->end_request();  // after DATA, or after trailers (which end a chunked body upstream)
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session* ng, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                                std::size_t len, void*) {
    nghttp2_session_consume_connection(ng, len);
    h2_stream* st = stream_of(ng, id);
    if (!st || st->finished) {
      nghttp2_session_consume_stream(ng, id, len);  // nobody will read it: keep the window open
      return 0;
    }
    st->add_data({data, len});
    return 0;
  }

  static int on_stream_close(nghttp2_session* ng, std::int32_t id, std::uint32_t, void* user) {
    h2_stream* st = stream_of(ng, id);
    if (!st) return 0;
    st->peer_closed();
    session* s = self(user);
    if (!s->started(st) || st->finished) s->streams_.erase(id);
    return 0;
  }

  void count_reset() {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - last_reset_).count();
    last_reset_ = now;
    reset_budget_ = std::min(reset_burst, reset_budget_ + elapsed * resets_per_second) - 1;
    if (reset_budget_ < 0 && !flooded_) {
      flooded_ = true;
      log::info("HTTP/2 connection from ", c_->ip, " ended: too many streams reset (rapid reset)");
      nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }

  // The stream being decoded expands past any header list a client means to send: GOAWAY with
  // ENHANCE_YOUR_CALM. The rest of the block is still decoded (HPACK state is per connection) but
  // nothing of it is kept.
  void hpack_bomb() {
    if (bombed_) return;
    bombed_ = true;
    log::info("HTTP/2 connection from ", c_->ip, " ended: header list over ", hpack_bomb_limit / 1024,
              " KiB (HPACK bomb)");
    nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
  }

  bool started(const h2_stream* st) const noexcept { return st->started; }

  // Streams whose request head completed during the last nghttp2_session_mem_recv start here, outside
  // nghttp2's callbacks (the pipeline calls nghttp2 as it answers).
  void start_ready() {
    for (const std::int32_t id : ready_) {
      const auto it = streams_.find(id);
      if (it == streams_.end() || it->second->closed_by_nghttp2() || it->second->started) continue;
      it->second->started = true;
      ++running_;
      stream_tasks_.spawn(run_stream(this, it->second.get()));
    }
    ready_.clear();
  }

  static coro::task<void> run_stream(session* s, h2_stream* st) {
    if (st->head_too_large()) {
      // The HTTP/1.1 answer to a head over 64 KiB; the list itself was not kept (an HPACK bomb).
      const failure_answer a = answer_for(downstream_failure(failure_kind::head_too_large), nullptr,
                                          s->c_->ip, s->c_->env->options->max_body);
      co_await st->write_all(as_bytes(a.response), s->c_->env->options->timeouts.idle);
    } else {
      std::string head = st->take_head();
      co_await serve_h2_stream(st, s->c_, std::move(head));
    }
    st->finish();
    st->finished = true;
    --s->running_;
    if (st->closed_by_nghttp2()) s->streams_.erase(st->id());
    // A draining server lets the streams in flight finish, then says GOAWAY (the writer ends the
    // connection once it has gone out).
    if (s->c_->w->draining && s->running_ == 0) s->goaway_after_flush();
    s->writer_wake_.notify();
  }

  coro::task<void> reader() {
    const timeouts& t = c_->env->options->timeouts;
    std::vector<std::byte> buf(read_chunk);
    const std::string_view sniffed = c_->in.view();
    if (!feed(std::span<const std::byte>(as_bytes(sniffed)))) stop_reading();
    c_->in.consume(sniffed.size());
    while (!ended_ && !reader_done_) {
      const bool idle = streams_.empty();
      if (idle && c_->w->draining) {
        goaway_after_flush();
        break;
      }
      if (idle) c_->w->idle_clients.insert(c_->stream);
      const io::io_result r = co_await c_->stream->read_some(std::span(buf), t.idle);
      if (idle) c_->w->idle_clients.erase(c_->stream);
      if (io::is_timeout(r.ec) || (io::is_cancelled(r.ec) && c_->w->draining)) {
        // Streams whose pipeline runs have timeouts of their own; a stream whose head never completes
        // (a slow HEADERS/CONTINUATION sequence) does not keep the connection.
        if (running_ > 0 && !c_->w->draining) continue;
        goaway_after_flush();  // idle: GOAWAY, as 1.1 closes
        break;
      }
      if (r.ec || r.bytes == 0) {
        ended_ = true;
        break;
      }
      if (!feed(std::span<const std::byte>(buf.data(), r.bytes))) break;
      if (flooded_) hard_close();
      if (!nghttp2_session_want_read(ng_)) break;
    }
    reader_done_ = true;
    writer_wake_.notify();
  }

  // Gives nghttp2 what the client sent; false when the connection must end (nghttp2 has queued its
  // GOAWAY: a protocol error, a flood).
  bool feed(std::span<const std::byte> bytes) {
    if (bytes.empty()) return true;
    const ssize_t n =
        nghttp2_session_mem_recv(ng_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    start_ready();
    writer_wake_.notify();
    if (n < 0) {
      if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
        log::info("HTTP/2 connection from ", c_->ip, " ended: ", nghttp2_strerror(static_cast<int>(n)));
      nghttp2_session_terminate_session(
          ng_, n == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
      // A flooder does not read what it asked for: waiting to flush the GOAWAY to it would keep the
      // connection for the write timeout. It is closed at once.
      if (n == NGHTTP2_ERR_FLOODED) hard_close();
      return false;
    }
    return true;
  }

  void stop_reading() { reader_done_ = true; }

  // The connection's orderly end (idle, drained). The writer says GOAWAY once every frame queued so far
  // has gone out: from the moment its session is closing, nghttp2 drops a queued RST_STREAM, so a stream
  // reset in the same turn (a stalled stream's write timeout) would end without its RST.
  void goaway_after_flush() {
    goaway_pending_ = true;
    writer_wake_.notify();
  }

  void hard_close() {
    ended_ = true;
    c_->stream->cancel();  // ends the writer's write to a client that does not read
    writer_wake_.notify();
  }

  coro::task<void> writer() {
    const timeouts& t = c_->env->options->timeouts;
    std::string out;
    for (;;) {
      out.clear();
      while (out.size() < write_batch) {
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(ng_, &data);
        if (n <= 0) break;
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      }
      if (!out.empty()) {
        // A client that reads nothing (its TCP window held at zero) ends here after the idle timeout.
        const io::io_result r = co_await c_->stream->write_all(as_bytes(out), t.idle);
        if (r.ec) break;
        continue;
      }
      if (ended_) break;
      if (std::exchange(goaway_pending_, false)) {
        nghttp2_session_terminate_session(ng_, NGHTTP2_NO_ERROR);
        continue;
      }
      if (reader_done_ && !nghttp2_session_want_write(ng_)) break;
      if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) break;
      const wake::outcome w = co_await writer_wake_.wait(t.tunnel_idle);
      if (w == wake::outcome::cancelled) break;  // the worker is shutting down
    }
    ended_ = true;
    c_->stream->cancel();  // ends the reader's read, if one is waiting
  }

  client_side* c_;
  nghttp2_session* ng_ = nullptr;
  wake writer_wake_;
  std::unordered_map<std::int32_t, std::unique_ptr<h2_stream>> streams_;
  std::vector<std::int32_t> ready_;
  coro::scope stream_tasks_;
  bool ended_ = false;           // the connection is over
  bool goaway_pending_ = false;  // goaway_after_flush() was called: the writer says it when flushed
  bool flooded_ = false;
  bool bombed_ = false;      // an HPACK bomb ended the connection
  std::size_t running_ = 0;  // streams whose pipeline coroutine runs
  double reset_budget_ = reset_burst;
  std::chrono::steady_clock::time_point last_reset_ = std::chrono::steady_clock::now();
  bool reader_done_ = false;  // nothing more is read: the writer ends once nghttp2 has nothing to send
};

}  // namespace

coro::task<void> serve_h2(client_side* c) {
  auto s = std::make_unique<session>(c);
  co_await s->run();
}

}  // namespace cproxy::proxy::h2
