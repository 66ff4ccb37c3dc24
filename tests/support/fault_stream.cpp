// Implementation of support/fault_stream.hpp: two byte queues (one per direction) shared by the ends,
// and waits that are timer waits, so a wake-up, a timeout, cancel() and the context's cancel_all()
// all resume the waiting coroutine from the context's loop.
#include "support/fault_stream.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace cproxy::test {

// A read or write waiting for the other end. Waking it cancels its timer wait.
struct fault_stream::waiter {
  io::timer* timer = nullptr;
  bool woken = false;
  bool cancelled = false;
};

namespace {

// Bytes from one end to the other.
struct direction {
  std::vector<std::byte> data;
  std::size_t head = 0;  // bytes before it were read
  std::size_t capacity = 0;
  bool shut = false;         // the writer shut its sending side: EOF after the data
  bool writer_gone = false;  // the writing end was destroyed: EOF too
  bool reader_gone = false;  // the reading end was destroyed: writes fail
  fault_stream::waiter* reader = nullptr;
  fault_stream::waiter* writer = nullptr;

  std::size_t unread() const noexcept { return data.size() - head; }
};

void wake(fault_stream::waiter* w) noexcept {
  if (w == nullptr || w->woken || w->cancelled) return;
  w->woken = true;
  w->timer->cancel();
}

void cancel_wait(fault_stream::waiter* w) noexcept {
  if (w == nullptr || w->woken || w->cancelled) return;
  w->cancelled = true;
  w->timer->cancel();
}

// Resumes the awaiting coroutine from the context's loop: no operation completes inline.
struct later {
  io::context* ctx;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    ctx->post([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

// Counts an operation in flight on one end, and one that overlaps another.
struct in_flight {
  int* n;
  in_flight(int* count, std::size_t* overlaps) noexcept : n(count) {
    if (*n > 0) ++*overlaps;
    ++*n;
  }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() { --*n; }
};

std::error_code broken_pipe() noexcept {
  return std::make_error_code(std::errc::broken_pipe);
}

}  // namespace

struct fault_stream::link {
  direction dir[2];  // dir[i]: written by end i, read by end 1 - i
  bool broken = false;

  void break_now() noexcept {
    broken = true;
    for (direction& d : dir) {
      wake(d.reader);
      wake(d.writer);
    }
  }
};

std::pair<std::unique_ptr<fault_stream>, std::unique_ptr<fault_stream>> fault_stream::make_pair(
    io::context& ctx, fault_counter* counter) {
  auto l = std::make_shared<link>();
  auto a = std::make_unique<fault_stream>(ctx, l, 0, counter);
  auto b = std::make_unique<fault_stream>(ctx, l, 1, counter);
  return {std::move(a), std::move(b)};
}

fault_stream::fault_stream(io::context& ctx, std::shared_ptr<link> l, int side, fault_counter* counter)
    : ctx_(&ctx), link_(std::move(l)), side_(side), counter_(counter), read_timer_(ctx), write_timer_(ctx) {}

fault_stream::~fault_stream() {
  direction& out = link_->dir[side_];
  direction& in = link_->dir[1 - side_];
  out.writer_gone = true;
  in.reader_gone = true;
  wake(out.reader);
  wake(in.writer);
}

bool fault_stream::send_shut() const noexcept {
  return link_->dir[side_].shut;
}

std::error_code fault_stream::count(fault_kind kind) noexcept {
  if (counter_ == nullptr) return {};
  const std::error_code ec = counter_->next(kind);
  if (ec) {
    ++faults_;
    // A socket that failed for any other reason than a timeout or a cancellation is dead.
    if (!io::is_timeout(ec) && !io::is_cancelled(ec)) link_->break_now();
  }
  return ec;
}

coro::task<std::error_code> fault_stream::wait(waiter* w, io::timer* t, io::duration timeout) {
  // No timeout still waits on the timer, so that the context's cancel_all() ends the wait too.
  const io::duration delay = timeout.count() > 0 ? timeout : io::duration(std::chrono::hours(1));
  const std::error_code ec = co_await t->wait(delay);
  if (w->woken) co_return std::error_code{};
  if (w->cancelled) co_return std::make_error_code(std::errc::operation_canceled);
  if (!ec) co_return std::make_error_code(std::errc::timed_out);
  co_return ec;  // cancel_all()
}

coro::task<io::io_result> fault_stream::read_some(std::span<std::byte> buf, io::duration timeout) {
  const in_flight guard(&reads_in_flight_, &overlapping_reads_);
  const std::error_code failed = count(fault_kind::read);
  later next{ctx_};
  co_await next;
  if (failed) co_return io::io_result{failed, 0};
  direction& in = link_->dir[1 - side_];
  for (;;) {
    if (link_->broken) co_return io::io_result{fault_counter::connection_reset(), 0};
    if (in.unread() > 0 || in.shut || in.writer_gone) break;
    waiter w{&read_timer_};
    in.reader = &w;
    const std::error_code ec = co_await wait(&w, &read_timer_, timeout);
    if (in.reader == &w) in.reader = nullptr;
    if (ec) co_return io::io_result{ec, 0};
  }
  std::size_t n = std::min(buf.size(), in.unread());
  if (read_limit_ > 0) n = std::min(n, read_limit_);
  if (n > 0) std::memcpy(buf.data(), in.data.data() + in.head, n);
  in.head += n;
  if (in.head == in.data.size()) {
    in.data.clear();
    in.head = 0;
  } else if (in.head >= 64 * 1024 && in.head * 2 >= in.data.size()) {
    in.data.erase(in.data.begin(), in.data.begin() + static_cast<std::ptrdiff_t>(in.head));
    in.head = 0;
  }
  bytes_read_ += n;
  wake(in.writer);  // room for a waiting write
  co_return io::io_result{{}, n};
}

coro::task<io::io_result> fault_stream::write_bytes(std::span<const std::byte> buf, io::duration timeout) {
  const std::error_code failed = count(fault_kind::write);
  later next{ctx_};
  co_await next;
  if (failed) co_return io::io_result{failed, 0};
  direction& out = link_->dir[side_];
  std::size_t done = 0;
  for (;;) {
    if (link_->broken) co_return io::io_result{fault_counter::connection_reset(), done};
    if (out.shut || out.reader_gone) co_return io::io_result{broken_pipe(), done};
    const std::size_t rest = buf.size() - done;
    std::size_t room = rest;
    if (out.capacity > 0) room = out.unread() < out.capacity ? out.capacity - out.unread() : 0;
    const std::size_t n = std::min(room, rest);
    out.data.insert(out.data.end(), buf.begin() + static_cast<std::ptrdiff_t>(done),
                    buf.begin() + static_cast<std::ptrdiff_t>(done + n));
    done += n;
    bytes_written_ += n;
    if (n > 0) wake(out.reader);
    if (done == buf.size()) co_return io::io_result{{}, done};
    waiter w{&write_timer_};
    out.writer = &w;
    const std::error_code ec = co_await wait(&w, &write_timer_, timeout);
    if (out.writer == &w) out.writer = nullptr;
    if (ec) co_return io::io_result{ec, done};
  }
}

coro::task<io::io_result> fault_stream::write_all(std::span<const std::byte> buf, io::duration timeout) {
  const in_flight guard(&writes_in_flight_, &overlapping_writes_);
  co_return co_await write_bytes(buf, timeout);
}

coro::task<io::io_result> fault_stream::write_all(std::span<const io::const_buffer> bufs,
                                                  io::duration timeout) {
  const in_flight guard(&writes_in_flight_, &overlapping_writes_);
  std::vector<std::byte> joined;
  for (const io::const_buffer& b : bufs) {
    const auto* p = static_cast<const std::byte*>(b.data);
    joined.insert(joined.end(), p, p + b.size);
  }
  const std::span<const std::byte> all(joined);
  co_return co_await write_bytes(all, timeout);
}

std::size_t fault_stream::try_write(std::span<const std::byte> buf) noexcept {
  if (writes_in_flight_ > 0) ++overlapping_writes_;
  if (count(fault_kind::write)) return 0;
  direction& out = link_->dir[side_];
  if (link_->broken || out.shut || out.reader_gone) return 0;
  try {
    out.data.insert(out.data.end(), buf.begin(), buf.end());
  } catch (...) {
    return 0;
  }
  bytes_written_ += buf.size();
  if (!buf.empty()) wake(out.reader);
  return buf.size();
}

void fault_stream::cancel() noexcept {
  cancel_wait(link_->dir[1 - side_].reader);
  cancel_wait(link_->dir[side_].writer);
}

void fault_stream::shutdown_send() noexcept {
  direction& out = link_->dir[side_];
  out.shut = true;
  wake(out.reader);
  wake(out.writer);  // a write of this end still waiting fails: its bytes would follow the EOF
}

void fault_stream::set_capacity(std::size_t n) noexcept {
  link_->dir[side_].capacity = n;
  wake(link_->dir[side_].writer);
}

void fault_stream::reset() noexcept {
  link_->break_now();
}

}  // namespace cproxy::test
