// The `connect` command line: parses arguments (Boost.Program_options) and runs the action.
#pragma once

namespace cproxy::control {

// Returns the process exit code: 0 success, 1 runtime error (port, network, configuration), 2 bad usage.
int run_cli(int argc, char** argv);

}  // namespace cproxy::control
