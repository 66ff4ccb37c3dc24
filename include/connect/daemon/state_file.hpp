// proxy-state.json: which proxy runs, on which port, since when. Written atomically (temp file and
// rename) once the listener is bound; removed at exit only by the process it names, so an old proxy
// never deletes its successor's file. A state whose pid is dead, or is not a connect process, is stale.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace cproxy::control {

struct proxy_state {
  pid_t pid = 0;
  std::uint16_t port = 0;
  bool tls = false;
  std::string started_at;  // ISO-8601 UTC with milliseconds
  std::string bind;
  std::string io;
  std::string version;
};

std::string state_path(const std::string& home);
// false with `error` set when the file cannot be written.
bool write_state(const std::string& home, const proxy_state& state, std::string& error);
// The state file's content, or nullopt when it is missing or unreadable.
std::optional<proxy_state> read_state(const std::string& home);
// The state of a proxy that runs now: the file names a live `connect` process of this user that answers
// on proxy.sock (the socket's peer, SO_PEERCRED, is that pid). Anything else is stale: ignored, and
// replaced by the next start. `status`, when given, receives the status object it answered.
std::optional<proxy_state> running_proxy(const std::string& home, std::string* status = nullptr);
// Removes the state file if it still names `pid`.
void remove_state_if_own(const std::string& home, pid_t pid);

}  // namespace cproxy::control
