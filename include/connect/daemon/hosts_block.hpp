// hosts_block: the connect-proxy block of a hosts file, as text in and text out (no I/O): the lines
// between "# connect-proxy begin" and "# connect-proxy end" replaced, added or removed, and every byte
// outside them kept as it was. hosts_command.cpp reads and writes the file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cproxy::control {

inline constexpr std::string_view hosts_begin_marker = "# connect-proxy begin";
inline constexpr std::string_view hosts_end_marker = "# connect-proxy end";

struct hosts_edit {
  std::string text;        // the whole new file (when `error` is empty)
  std::string error;       // the markers are broken: "line 3 has ..."; nothing may be written
  bool had_block = false;  // the file held a complete block
};

// `body` holds the block's lines without line ends ("127.0.0.1 api.localhost"); empty removes the block.
// Rules (docs/control-plane.md "Name resolution"):
// - A marker is a line that is the marker text once spaces, tabs and a CR around it are dropped.
// - A block is replaced where it stands, with the line end its begin line has (CRLF or LF); a new one is
//   appended with the file's first line end (LF for a file without one).
// - A file without a final line end keeps having none: the block is appended after a line end and
//   itself ends without one, and removing a block that ends the file without a line end also removes
//   the line end before it. So --remove gives back the file as it was before, byte for byte.
// - A begin without an end after it, an end without a begin before it, or a second block is an error:
//   lines the user may care about are never guessed away.
hosts_edit edit_hosts_block(std::string_view file, const std::vector<std::string>& body);

// The block's lines for route names and dev domains: "127.0.0.1 NAME.localhost" and
// "127.0.0.1 NAME.DOMAIN" for each domain, sorted, each once.
std::vector<std::string> hosts_block_lines(const std::vector<std::string>& names,
                                           const std::vector<std::string>& domains);

}  // namespace cproxy::control
