// loop_clock: the time as of this thread's current loop turn. A backend whose loop runs on the thread
// reads the steady clock once per turn and publishes it there, so the turn's timestamps and deadlines
// cost no clock read each (about a dozen reads per proxied request were 3% of a keep-alive profile);
// libuv's uv_now() is the same idea. Where no loop publishes (the asio backend, a thread without a
// loop) it reads the steady clock itself. A turn is short, so the time is never more than one turn old.
#pragma once

#include <chrono>

namespace cproxy::io {

namespace detail {
struct loop_turn {
  std::chrono::steady_clock::time_point time{};
  bool published = false;
};
}  // namespace detail

class loop_clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  static time_point now() noexcept { return turn_.published ? turn_.time : std::chrono::steady_clock::now(); }

  // For a backend's loop: at each turn, and once the loop stops running on this thread.
  static void publish(time_point t) noexcept {
    turn_.time = t;
    turn_.published = true;
  }
  static void withdraw() noexcept { turn_.published = false; }

 private:
  static inline thread_local detail::loop_turn turn_;
};

}  // namespace cproxy::io
