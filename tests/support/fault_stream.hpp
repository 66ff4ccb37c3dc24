// fault_stream: an in-memory io::stream pair for tests, in the spirit of Beast's test::stream with its
// fail_count. Bytes written on one end are read on the other; a shared fault_counter counts every
// operation and fails the Nth one, so a test can sweep every error exit of the code above it.
// Not a socket: no kernel, no splice (plain_socket() is nullptr); ends run on one context's thread.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>
#include <span>
#include <system_error>
#include <utility>

#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/stream.hpp"
#include "connect/io/timer.hpp"

namespace cproxy::test {

enum class fault_kind { read, write, connect, timer, other };

// Counts operations and makes the Nth one fail. Shared by every fake of a run (both ends of a
// fault_stream pair, an upstream connector, a timer fake): each calls next() once per operation.
//
// A sweep: run once with no fault and read count() (the operations the run used), then run again
// for N = 1..count() with fault_counter(N), each run with new fakes. See sweep() below.
class fault_counter {
 public:
  fault_counter() = default;
  // Fails the nth operation counted from now (1-based; 0: none) with `ec`.
  explicit fault_counter(std::size_t fail_at, std::error_code ec = connection_reset()) noexcept
      : fail_at_(fail_at), error_(ec) {}

  void fail_at(std::size_t n, std::error_code ec = connection_reset()) noexcept {
    fail_at_ = count_ + n;
    error_ = ec;
    if (n == 0) fail_at_ = 0;
  }
  // Counts one operation of `kind`; returns the error it must fail with, or {} to go ahead. Only
  // the chosen operation fails: what follows is up to the fake (a fault_stream that fails with
  // anything but a timeout or a cancellation is broken from then on, as a reset socket is).
  std::error_code next(fault_kind kind) noexcept {
    ++count_;
    ++by_kind_[static_cast<std::size_t>(kind)];
    if (count_ != fail_at_) return {};
    fired_ = true;
    fired_kind_ = kind;
    return error_;
  }
  // true: go ahead; false: fail this operation with error().
  bool step(fault_kind kind) noexcept { return !next(kind); }

  std::size_t count() const noexcept { return count_; }
  std::size_t fails_at() const noexcept { return fail_at_; }  // 0: none
  std::size_t count(fault_kind kind) const noexcept { return by_kind_[static_cast<std::size_t>(kind)]; }
  bool fired() const noexcept { return fired_; }
  fault_kind fired_kind() const noexcept { return fired_kind_; }
  std::error_code error() const noexcept { return error_; }

  static std::error_code connection_reset() noexcept {
    return std::make_error_code(std::errc::connection_reset);
  }
  // What a timer that fired gives: io::is_timeout() recognises it.
  static std::error_code timeout() noexcept { return std::make_error_code(std::errc::timed_out); }

 private:
  std::size_t count_ = 0;
  std::size_t fail_at_ = 0;
  std::error_code error_ = connection_reset();
  std::size_t by_kind_[5] = {};
  bool fired_ = false;
  fault_kind fired_kind_ = fault_kind::other;
};

// Runs `once(counter)` with no fault to count the operations a run uses (total), then once for each
// N = 1..total with the Nth failing with `ec`. `once` builds its own fakes on `counter`, runs to the
// end (bounded: a deadline per run) and checks what it must. Returns total (0 if it exceeds `max`).
template <class Once>
std::size_t sweep(Once once, std::error_code ec = fault_counter::connection_reset(),
                  std::size_t max = 100'000) {
  fault_counter clean;
  once(clean);
  const std::size_t total = clean.count();
  if (total > max) return 0;
  for (std::size_t n = 1; n <= total; ++n) {
    fault_counter counter(n, ec);
    once(counter);
  }
  return total;
}

class fault_stream final : public io::stream {
 public:
  struct link;
  struct waiter;

  // Two connected ends on `ctx` (whose thread runs them) counting on `counter` (nullptr: count
  // nothing, fail nothing). Either end may be destroyed first: the other then reads EOF and its
  // writes fail with broken_pipe.
  static std::pair<std::unique_ptr<fault_stream>, std::unique_ptr<fault_stream>> make_pair(
      io::context& ctx, fault_counter* counter = nullptr);

  fault_stream(io::context& ctx, std::shared_ptr<link> l, int side, fault_counter* counter);
  ~fault_stream() override;
  fault_stream(const fault_stream&) = delete;
  fault_stream& operator=(const fault_stream&) = delete;

  // io::stream. Every operation completes from the context's loop, never inline; a timeout of 0
  // means none. Each counts once on the counter (read_any through read_some; try_write as a write).
  coro::task<io::io_result> read_some(std::span<std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const std::byte> buf, io::duration timeout) override;
  coro::task<io::io_result> write_all(std::span<const io::const_buffer> bufs, io::duration timeout) override;
  // Takes every byte unless the link is broken, the end shut or the counter fails it (then 0).
  std::size_t try_write(std::span<const std::byte> buf) noexcept override;
  // Pending reads and writes of this end complete with operation_canceled.
  void cancel() noexcept override;
  // The peer reads EOF once it has read every byte written before.
  void shutdown_send() noexcept override;
  io::socket* plain_socket() noexcept override { return nullptr; }

  // Test controls.
  // At most `n` bytes per read (0: no limit), to exercise partial reads.
  void set_read_limit(std::size_t n) noexcept { read_limit_ = n; }
  // A write waits while the peer holds `n` bytes or more unread (0: never waits), so a write stays
  // in flight until the peer reads: what a full socket buffer does.
  void set_capacity(std::size_t n) noexcept;
  // Breaks the connection as a reset does: pending and later operations on both ends fail with
  // connection_reset.
  void reset() noexcept;

  // What the test checks.
  // Operations started while another one of the same direction was in flight on this end: the
  // io::stream rule (one read and one write at a time) says 0. Recorded rather than asserted, so the
  // code under test still runs to its end and the test says what went wrong.
  std::size_t overlapping_reads() const noexcept { return overlapping_reads_; }
  std::size_t overlapping_writes() const noexcept { return overlapping_writes_; }
  bool reading() const noexcept { return reads_in_flight_ > 0; }
  bool writing() const noexcept { return writes_in_flight_ > 0; }
  std::size_t bytes_written() const noexcept { return bytes_written_; }
  std::size_t bytes_read() const noexcept { return bytes_read_; }
  std::size_t faults() const noexcept { return faults_; }  // operations of this end the counter failed
  bool send_shut() const noexcept;                         // shutdown_send() was called on this end

 private:
  std::error_code count(fault_kind kind) noexcept;
  coro::task<io::io_result> write_bytes(std::span<const std::byte> buf, io::duration timeout);
  coro::task<std::error_code> wait(waiter* w, io::timer* t, io::duration timeout);

  io::context* ctx_;
  std::shared_ptr<link> link_;
  int side_;
  fault_counter* counter_;
  io::timer read_timer_;
  io::timer write_timer_;
  std::size_t read_limit_ = 0;
  int reads_in_flight_ = 0;
  int writes_in_flight_ = 0;
  std::size_t overlapping_reads_ = 0;
  std::size_t overlapping_writes_ = 0;
  std::size_t bytes_written_ = 0;
  std::size_t bytes_read_ = 0;
  std::size_t faults_ = 0;
};

}  // namespace cproxy::test
