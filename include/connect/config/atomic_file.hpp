// Writing a file so that a reader sees either the old one or the whole new one: the state file, the
// certificates, the trust-store anchor.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace cproxy::control {

// Writes `text` to a temporary file beside `path` (PATH.tmp.RANDOM, 16 hex digits from getrandom: no
// tool that scans the folder for *.crt or *.json picks it up, and nobody can plant it ahead) created
// with O_EXCL|O_NOFOLLOW and `mode`, syncs it, and renames it over `path` (a link at `path` is
// replaced, not followed). A key is never readable by others, not even for a moment. Returns "" on
// success, else the reason.
std::string write_file_atomically(const std::string& path, std::string_view text, mode_t mode);

}  // namespace cproxy::control
