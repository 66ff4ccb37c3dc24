// proxy.sock: the running proxy's control socket (Unix domain, 0600, line-delimited JSON).
// {"cmd":"status"} answers the status object; {"cmd":"stop"} starts a drain; {"cmd":"handover"} passes
// the listening socket (SCM_RIGHTS) and the hub routes to a successor started with --replace, which
// answers {"cmd":"accepting"} once its route table is complete and its workers accept from the socket;
// only then does this proxy drain and exit.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connect/route/table.hpp"

namespace cproxy::control {

std::string control_socket_path(const std::string& home);

// The hub routes a predecessor holds when it hands over: the successor's first hub answer may be seconds
// away (or the hub down), and until then it must route what the predecessor routed.
struct hub_handover {
  std::string hub_url;               // the hub they came from; "" when the predecessor polls none
  std::vector<route::route> routes;  // source::hub
};

// Bounds of the handover answer: a hub with more services than this hands over the first ones only.
constexpr std::size_t max_handover_routes = 4096;
constexpr std::size_t max_handover_answer_bytes = 1 << 20;

// The handover answer line, {"ok":true,"hub":{"url":"...","routes":[{"name":..,"host":..,"port":..}]}},
// and its reading: every field checked as any input is; nullopt with `error` when it is not usable. An
// answer without "hub" (a predecessor older than this message) reads as no hub routes.
std::string handover_answer(const hub_handover& hub);
std::optional<hub_handover> parse_handover_answer(std::string_view line, std::string& error);

class control_server {
 public:
  struct handlers {
    std::function<std::string()> status;  // the status object
    std::function<void()> stop;           // start a drain
    int listen_fd = -1;                   // what a handover passes
    std::function<hub_handover()> hub;    // the hub routes a handover passes with it; unset: none
    std::function<void()> handed_over;    // the successor confirmed: it accepts now
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
  // The predecessor's hub routes at the moment it handed over.
  const hub_handover& hub() const noexcept { return hub_; }
  // Tells the predecessor that this process accepts now: it stops accepting and drains.
  void confirm();

 private:
  handover(int conn, int fd, hub_handover hub) : conn_(conn), fd_(fd), hub_(std::move(hub)) {}
  int conn_ = -1;
  int fd_ = -1;
  hub_handover hub_;
};

// The process behind proxy.sock, as the kernel knows it (SO_PEERCRED): the one that listens there.
struct control_peer {
  pid_t pid = 0;
  uid_t uid = 0;
};

// A one-line request/answer on proxy.sock (status, stop); nullopt when nobody answers. `peer`, when
// given, is set to the process that answered.
std::optional<std::string> control_request(const std::string& path, const std::string& line,
                                           control_peer* peer = nullptr);

}  // namespace cproxy::control
