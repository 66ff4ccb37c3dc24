// Text from a file or the network made safe for one log line: a name a hub or another tool chose must
// not start a line of its own, pass for a timestamp, or fill the log. Pure: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cproxy::log {

// Printable ASCII and well-formed UTF-8 stay as they are; CR, LF and tab become \r \n \t, a quote \",
// a backslash \\, and every other control byte (C0, DEL, C1), U+2028/U+2029 and the bidi overrides, and
// every byte that is not part of valid UTF-8 become \xNN per byte. At most `limit` bytes of the result
// come from `text`; a longer text is cut at a character and ends with "...". Quote the result where a
// reader must see where it ends: "\"" + escaped(name) + "\"".
std::string escaped(std::string_view text, std::size_t limit = 100);

}  // namespace cproxy::log
