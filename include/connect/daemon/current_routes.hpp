// current_routes: the routes `hosts` and `doctor` work on: what the running proxy routes (its status
// object, hub routes included) together with what it would route at start (config routes and the live
// entries of active-routes.json). Reads files and proxy.sock; keeps nothing.
#pragma once

#include <string>
#include <vector>

#include "connect/route/table.hpp"

namespace cproxy::control {

struct settings;

// Sorted by name, one per name, with the contract's precedence (hub < config < active-routes.json).
// `running_status` is the running proxy's status object ("" when none runs).
std::vector<route::route> current_routes(const settings& s, const std::string& running_status);

}  // namespace cproxy::control
