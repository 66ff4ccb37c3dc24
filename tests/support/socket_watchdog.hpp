// socket_watchdog: bounds a test's blocking socket calls (Beast's, for one): shuts the socket down if the
// case is not done by the deadline, so a peer that stops answering fails the case instead of hanging it.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace cproxy::test {

class socket_watchdog {
 public:
  socket_watchdog(int fd, std::chrono::milliseconds deadline)
      : thread_([this, fd, deadline] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, deadline, [this] { return done_; })) ::shutdown(fd, SHUT_RDWR);
        }) {}
  ~socket_watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  socket_watchdog(const socket_watchdog&) = delete;
  socket_watchdog& operator=(const socket_watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace cproxy::test
