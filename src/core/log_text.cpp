// Implementation of connect/core/log_text.hpp.
#include "connect/core/log_text.hpp"

#include <cstdint>

namespace cproxy::log {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (no overlong forms, no surrogates,
// nothing past U+10FFFF), or 0; `code` gets its code point.
std::size_t utf8_length(std::string_view s, char32_t& code) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  std::size_t n = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, code = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, code = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, code = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

// Characters a terminal or an editor would show as a line break, or use to reorder what is shown.
bool invisible_trouble(char32_t c) {
  return (c >= 0x80 && c <= 0x9F) || c == 0x2028 || c == 0x2029 || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

void append_hex(std::string& out, std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += "\\x";
    out += digits[b >> 4];
    out += digits[b & 0x0F];
  }
}

}  // namespace

std::string escaped(std::string_view text, std::size_t limit) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (i >= limit) {
      out += "...";
      break;
    }
    const char ch = text[i];
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b < 0x7F) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
      ++i;
    } else if (ch == '\n' || ch == '\r' || ch == '\t') {
      out += ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : "\\t";
      ++i;
    } else if (char32_t code = 0; b >= 0x80) {
      std::size_t n = utf8_length(text.substr(i), code);
      if (n == 0) n = 1;  // a stray byte: shown alone, and the next byte is looked at afresh
      if (i + n > limit && n > 1) {
        out += "...";
        break;
      }
      if (n > 1 && !invisible_trouble(code)) {
        out.append(text.substr(i, n));
      } else {
        append_hex(out, text.substr(i, n));
      }
      i += n;
    } else {
      append_hex(out, text.substr(i, 1));
      ++i;
    }
  }
  return out;
}

}  // namespace cproxy::log
