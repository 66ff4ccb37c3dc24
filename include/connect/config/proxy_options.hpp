// What `connect proxy start` was asked to do, after parsing and validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "connect/io/select_backend.hpp"

namespace cproxy::control {

// A field left empty (nullopt) was not given on the command line: the config file, then the default,
// decide it.
struct proxy_options {
  std::optional<std::uint16_t> port;
  std::optional<std::string> bind;
  std::optional<std::string> config_path;  // --config: replaces the home folder's config.json
  std::vector<std::string> domains;        // --domain, besides localhost
  bool quiet = false;
  bool replace = false;        // take the port over: from our own proxy by handover, else stop its listener
  std::uint64_t max_body = 0;  // --max-body: 0 is no limit
  io::backend_choice io = io::backend_choice::automatic;
  unsigned threads = 0;  // 0: one per online CPU
  bool foreground = false;
  std::optional<std::string> hub;
  bool https = false;               // --https (or "https": true in the config file)
  std::optional<std::string> cert;  // --cert and --key: a pair to serve instead of minted leaves
  std::optional<std::string> key;
  bool trust = false;  // --trust: install the CA into the trust stores at start
};

// Runs the proxy in this process until SIGINT or SIGTERM; returns the exit code. `ready_fd` (a daemon
// child's pipe to its parent) receives "ok PORT" once the proxy listens, or "err TEXT" if it fails.
int run_foreground(const proxy_options& options, int ready_fd = -1);
// Starts the proxy as a background process, waits until it listens or fails, prints the start block.
int run_daemon(const proxy_options& options);
int run_stop();
int run_status(bool as_json);

}  // namespace cproxy::control
