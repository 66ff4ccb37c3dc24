// `connect proxy start` (background), `stop` and `status`: the proxy as a daemon found through its
// state file. The daemon reports listening or failing to its parent over a pipe, so `start` prints the
// truth and exits 0 or 1 accordingly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "connect/config/config_file.hpp"
#include "connect/config/proxy_options.hpp"
#include "connect/core/log.hpp"
#include "connect/daemon/control_socket.hpp"
#include "connect/daemon/state_file.hpp"
#include "connect/pki/trust_store.hpp"
#include "connect/platform/process.hpp"

namespace cproxy::control {
namespace {

using namespace std::chrono_literals;

// The home folder as the contract prints it: ~/.privateconnect when it is the default.
std::string shown_home(const std::string& home) {
  const char* custom = std::getenv("PRIVATECONNECT_HOME");
  const char* user_home = std::getenv("HOME");
  if ((!custom || !*custom) && user_home && home == std::string(user_home) + "/.privateconnect")
    return "~/.privateconnect";
  return home;
}

// Opened here, not in the child, so that a link planted as proxy.log is refused with a line saying so.
// The descriptor, or -1 after printing why.
int open_daemon_log(const std::string& home) {
  const std::string log_path = home + "/proxy.log";
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (log < 0) {
    const int err = errno;
    std::cerr << "[x] cannot open " << log_path << ": "
              << (err == ELOOP ? std::string("it is a symbolic link") : std::string(std::strerror(err)))
              << "\n";
  }
  return log;
}

// The daemon's side of the fork: a session of its own, stdin /dev/null, stdout and stderr to the log,
// the pipe to the parent as fd 3, nothing else.
[[noreturn]] void become_daemon(const proxy_options& options, const std::string& home, int log, int ready) {
  ::setsid();
  const int null_in = ::open("/dev/null", O_RDONLY);
  if (null_in < 0) ::_exit(1);
  ::dup2(null_in, 0);
  ::dup2(log, 1);
  ::dup2(log, 2);
  ::dup2(ready, 3);
  ::close_range(4, ~0U, 0);             // no descriptor of the shell that started us lives on in the daemon
  log::open_file(home + "/proxy.log");  // by path, so that SIGHUP can reopen it after logrotate
  ::_exit(run_foreground(options, 3));
}

// What the child wrote before closing its end: "ok PORT[ https]\n" and "warn" lines, or "err TEXT".
std::string read_child_report(int ready) {
  std::string report;
  char buf[1024];
  for (int reads = 0; reads < 1024; ++reads) {  // until the child closes its end: listening or dead
    const ssize_t n = ::read(ready, buf, sizeof buf);
    if (n > 0) {
      report.append(buf, static_cast<std::size_t>(n));
      if (report.starts_with("ok ") && report.ends_with("\n")) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  return report;
}

// The daemon start block of the contract, then the child's warnings, then --trust if asked.
void print_daemon_started(const proxy_options& options, const std::string& home, const std::string& report) {
  // "ok PORT" or "ok PORT https"
  const std::string line = report.substr(3, report.find('\n') - 3);
  const std::string port = line.substr(0, line.find(' '));
  const bool https = line.ends_with(" https");
  std::cout << "🌐 Starting proxy...\n\n"
            << "[ok] " << (https ? "HTTPS" : "HTTP") << " proxy started on port " << port << "\n"
            << "  Logs: " << shown_home(home) << "/proxy.log\n"
            << "  Stop: connect proxy stop\n"
            << std::flush;
  for (std::size_t at = report.find("\nwarn "); at != std::string::npos; at = report.find("\nwarn ", at + 1))
    std::cerr << report.substr(at + 6, report.find('\n', at + 1) - at - 6) << "\n";
  // --trust changes the trust stores from here, where the user sees the outcome, not in the daemon.
  // The proxy started: that is what the exit code says (as for --foreground); the lines say how
  // each store went.
  if (options.trust && https && !options.cert) {
    std::cout << "\n";
    run_trust(trust_action::trust, options);
  }
}

}  // namespace

int run_daemon(const proxy_options& options) {
  const std::string home = home_folder();
  std::string error;
  if (!ensure_home_folder(error)) {
    std::cerr << "[x] " << error << "\n";
    return 1;
  }
  if (const auto running = options.replace ? std::nullopt : running_proxy(home)) {
    std::cout << "[!] Proxy is already running on port " << running->port << "\n";
    return 0;
  }
  const int log = open_daemon_log(home);
  if (log < 0) return 1;
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    std::cerr << "[x] pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::cerr << "[x] fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (child == 0) {
    ::close(ready[0]);
    become_daemon(options, home, log, ready[1]);
  }
  ::close(ready[1]);
  const std::string report = read_child_report(ready[0]);
  ::close(ready[0]);
  if (report.starts_with("ok ")) {
    print_daemon_started(options, home, report);
    return 0;
  }
  std::cerr << (report.starts_with("err ")
                    ? report.substr(4)
                    : "[x] The proxy exited before it listened; see " + home + "/proxy.log\n");
  return 1;
}

int run_stop() {
  const std::string home = home_folder();
  auto running = running_proxy(home);
  // A process handle names the process itself, never a later one that got its pid. Checked again with it
  // held: the process it names is the one that answers on proxy.sock, so every signal below reaches only it.
  platform::process_handle handle;
  if (running) handle = platform::process_handle::open(running->pid);
  if (running && handle.valid()) running = running_proxy(home);
  if (!running) {
    std::cout << "[!] Proxy is not running.\n";
    return 0;
  }
  const pid_t pid = running->pid;
  const auto signal = [pid, &handle](int sig) {
    if (handle.valid()) {
      handle.signal(sig);
    } else {
      ::kill(pid, sig);  // no handle (a kernel without pidfds): the pid was verified a moment ago
    }
  };
  const auto is_alive = [pid, &handle] {
    return handle.valid() ? !handle.exited() : platform::pid_alive(pid);
  };
  // Asked over proxy.sock, of the process verified above; one that does not answer there gets SIGTERM.
  control_peer peer;
  if (!control_request(control_socket_path(home), R"({"cmd":"stop"})", &peer) || peer.pid != pid)
    signal(SIGTERM);
  // The proxy drains for up to 10 s; past that and a margin, it is made to stop.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (is_alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  if (is_alive()) {
    signal(SIGKILL);
    for (int waits = 0; waits < 100 && is_alive(); ++waits) std::this_thread::sleep_for(20ms);
  }
  if (handle.valid()) {
    handle = platform::process_handle();
    // Exited is not yet gone: its parent (init, for a daemon) reaps it a moment later, and a caller that
    // checks the pid right after "stopped" must not find it.
    for (int waits = 0; waits < 100 && platform::pid_alive(pid); ++waits) std::this_thread::sleep_for(20ms);
  }
  remove_state_if_own(home, pid);
  std::cout << "[ok] Proxy stopped.\n";
  return 0;
}

int run_status(bool as_json) {
  const std::string home = home_folder();
  std::string status;
  const auto running = running_proxy(home, &status);
  boost::json::error_code ec;
  const boost::json::value parsed = status.empty() ? boost::json::value() : boost::json::parse(status, ec);
  if (!running || ec || !parsed.is_object()) {
    if (as_json) {
      std::cout << R"({"running":false})"
                << "\n";
    } else {
      std::cout << "🌐 Proxy Status\n\n  ○ Proxy: stopped\n";
    }
    return 0;
  }
  if (as_json) {
    std::cout << status << "\n";
    return 0;
  }
  const boost::json::object& o = parsed.as_object();
  const bool tls = o.if_contains("tls") && o.at("tls").is_bool() && o.at("tls").as_bool();
  std::cout << "🌐 Proxy Status\n\n"
            << "  ● Proxy: running (PID " << running->pid << ")\n"
            << "    Port: " << running->port << "\n"
            << "    TLS:  " << (tls ? "enabled" : "disabled") << "\n"
            << "    Routes:\n";
  if (const boost::json::value* routes = o.if_contains("routes"); routes && routes->is_array()) {
    for (const boost::json::value& r : routes->as_array()) {
      if (r.is_object() && r.as_object().if_contains("url") && r.at("url").is_string())
        std::cout << "      " << r.at("url").as_string().c_str() << "\n";
    }
  }
  return 0;
}

}  // namespace cproxy::control
