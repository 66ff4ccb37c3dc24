// Implementation of connect/daemon/state_file.hpp.
#include "connect/daemon/state_file.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstring>

#include "connect/config/atomic_file.hpp"
#include "connect/config/config_file.hpp"
#include "connect/daemon/control_socket.hpp"
#include "connect/platform/process.hpp"

namespace cproxy::control {
namespace json = boost::json;

std::string state_path(const std::string& home) {
  return home + "/proxy-state.json";
}

bool write_state(const std::string& home, const proxy_state& state, std::string& error) {
  json::object o;
  o["pid"] = state.pid;
  o["port"] = state.port;
  o["tls"] = state.tls;
  o["startedAt"] = state.started_at;
  o["bind"] = state.bind;
  o["io"] = state.io;
  o["version"] = state.version;
  error = write_file_atomically(state_path(home), json::serialize(o) + "\n", 0600);
  return error.empty();
}

std::optional<proxy_state> read_state(const std::string& home) {
  std::string text;
  if (read_small_file(state_path(home), text, 64 * 1024, links::refuse) != 0) return std::nullopt;
  json::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.as_object();
  proxy_state s;
  const json::value* pid = o.if_contains("pid");
  const json::value* port = o.if_contains("port");
  if (!pid || !pid->is_int64() || !port || !port->is_int64()) return std::nullopt;
  s.pid = static_cast<pid_t>(pid->as_int64());
  s.port = static_cast<std::uint16_t>(port->as_int64());
  if (const json::value* tls = o.if_contains("tls"); tls && tls->is_bool()) s.tls = tls->as_bool();
  if (const json::value* at = o.if_contains("startedAt"); at && at->is_string())
    s.started_at = at->as_string();
  if (const json::value* bind = o.if_contains("bind"); bind && bind->is_string()) s.bind = bind->as_string();
  if (const json::value* io = o.if_contains("io"); io && io->is_string()) s.io = io->as_string();
  if (const json::value* ver = o.if_contains("version"); ver && ver->is_string())
    s.version = ver->as_string();
  return s;
}

namespace {
// A pid can be reused by an unrelated process after the proxy died: its command name says which it is.
bool is_connect_process(pid_t pid) {
  if (pid <= 0 || !platform::pid_alive(pid)) return false;
  const std::optional<std::string> name = platform::process_name(pid);
  if (!name) return true;  // a platform that cannot name it: trust the live pid
  return *name == "connect";
}
}  // namespace

std::optional<proxy_state> running_proxy(const std::string& home, std::string* status) {
  std::optional<proxy_state> s = read_state(home);
  if (!s || !is_connect_process(s->pid)) return std::nullopt;
  // A live `connect` process is not necessarily our proxy (another connect command got the pid, or the
  // file names another user's process): the proxy is the process that answers on proxy.sock, which it
  // creates before it writes the state file. The kernel says who that is; a name in a file is not proof.
  control_peer peer;
  std::optional<std::string> answer =
      control_request(control_socket_path(home), R"({"cmd":"status"})", &peer);
  if (!answer || peer.pid != s->pid || peer.uid != ::getuid()) return std::nullopt;
  if (status) *status = std::move(*answer);
  return s;
}

void remove_state_if_own(const std::string& home, pid_t pid) {
  const std::optional<proxy_state> s = read_state(home);
  if (s && s->pid == pid) std::remove(state_path(home).c_str());
}

}  // namespace cproxy::control
