// proxy.sock: the running proxy's control socket (Unix domain, 0600, line-delimited JSON).
// {"cmd":"status"} answers the status object; {"cmd":"stop"} starts a drain; {"cmd":"handover"} passes
// the listening socket (SCM_RIGHTS) to a successor started with --replace, which answers
// {"cmd":"accepting"} once its workers accept from it; only then does this proxy drain and exit.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace cproxy::control {

std::string control_socket_path(const std::string& home);

class control_server {
 public:
  struct handlers {
    std::function<std::string()> status;  // the status object
    std::function<void()> stop;           // start a drain
    int listen_fd = -1;                   // what a handover passes
    std::function<void()> handed_over;   // the successor confirmed: it accepts now
  };
  // Binds `path` (replacing a stale socket file, never a live one) and serves on its own thread.
  // `error` is set, and nothing served, when it cannot.
  control_server(std::string path, handlers h, std::string& error);
  ~control_server();  // stops the thread; removes the socket file if it is still this server's
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// The successor's side of a handover.
class handover {
 public:
  // Asks the proxy at `path` for its listening socket; nullopt (with `error`) when it cannot.
  static std::optional<handover> request(const std::string& path, std::string& error);
  handover(handover&& o) noexcept;
  handover& operator=(handover&& o) noexcept;
  ~handover();
  int listen_fd() const noexcept { return fd_; }
  // Tells the predecessor that this process accepts now: it stops accepting and drains.
  void confirm();

 private:
  handover(int conn, int fd) : conn_(conn), fd_(fd) {}
  int conn_ = -1;
  int fd_ = -1;
};

// A one-line request/answer on proxy.sock (status, stop); nullopt when nobody answers.
std::optional<std::string> control_request(const std::string& path, const std::string& line);

}  // namespace cproxy::control
