// Process-wide settings a proxy needs before it opens sockets.
#pragma once

#include <cstdint>

namespace cproxy {

// Raises the open-file soft limit to the hard limit; returns the limit now in force.
std::uint64_t raise_open_file_limit();

// Ignores SIGPIPE: a peer that goes away must become an EPIPE result, never a dead process.
void ignore_sigpipe();

}  // namespace cproxy
