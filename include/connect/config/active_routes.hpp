// active_routes: reads active-routes.json, where `connect reach` and other tools publish their services,
// into source::reach routes. Reads the file and asks whether pids live; keeps no state and does not
// watch (the watcher calls this on every change and decides what to keep).
//
// The rules, so that an invalid file never empties the table (contract, "Files"):
// - Missing file: no routes, no error (its routes went away with it).
// - Unreadable file, invalid JSON (a half-written or empty file), a top level that is not an object, no
//   "routes" array, or a "version" other than 1: `error` is set and `routes` is empty; the caller keeps
//   its last good table and logs the error once.
// - One malformed entry (not an object, no usable "serviceName" or "localPort", a bad "pid" or "host")
//   is skipped with a line in `warnings`, and the other entries still apply: one tool's bad entry must
//   not hide every other tool's services, and a half-written file already fails as a whole above.
// - An entry whose "pid" is above 0 and not alive is skipped silently: that is the normal way a route
//   ends. "pid" 0, null or absent is a static route.
// - Names are lowercased; besides the config file's DNS names they may hold '_' (see is_route_name).
//   "host" absent, null or "" is "localhost"; otherwise it must be "localhost" or an IP address.
//   "protocol", "startedAt" and unknown keys are ignored (other tools may add fields).
// - Two usable entries of one name (case-insensitive) are both returned and route::table lets the later
//   one win; one line in `warnings` names every repeated name and the entry that
//   applies (config.json rejects a repeated name, but one tool's slip here must not drop every route).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "connect/route/table.hpp"

namespace cproxy::control {

struct active_routes_result {
  std::vector<route::route> routes;  // in file order
  std::string error;                 // non-empty: the whole file is unusable
  // `routes[1] ("api") skipped: "localPort" is missing`, one per entry; then one line on repeated names
  std::vector<std::string> warnings;
};

// Checks the file's text. `pid_alive` is asked only about entries with a pid above 0. The texts name no
// file.
active_routes_result parse_active_routes(std::string_view json_text,
                                         const std::function<bool(int pid)>& pid_alive);

// Reads `path` and parses it with process_alive(); errors and warnings start with
// "active routes file PATH: ".
active_routes_result read_active_routes(const std::string& path);

// kill(pid, 0) succeeds or fails with EPERM (alive, but another user's). A zombie counts as alive until
// reaped.
bool process_alive(int pid);

}  // namespace cproxy::control
