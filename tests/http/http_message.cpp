// Implementation of http_message.hpp.
#include "http/http_message.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace cproxy::http_test {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> message_head::get(std::string_view name) const {
  for (const field& f : fields) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::size_t message_head::count(std::string_view name) const {
  return static_cast<std::size_t>(
      std::count_if(fields.begin(), fields.end(), [&](const field& f) { return iequals(f.name, name); }));
}

bool message_head::has_token(std::string_view name, std::string_view token) const {
  for (const field& f : fields) {
    if (!iequals(f.name, name)) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

message_head parse_head(std::string raw) {
  message_head h;
  h.raw = std::move(raw);
  std::string_view rest = h.raw;
  bool first = true;
  while (!rest.empty()) {
    const std::size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    if (line.empty()) break;
    if (first) {
      h.start_line = std::string(line);
      first = false;
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      h.fields.push_back({std::string(line), {}});
    } else {
      h.fields.push_back({std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))});
    }
  }
  return h;
}

chunked_decoder::status chunked_decoder::feed(std::string& in) {
  std::size_t pos = 0;
  status result = status::need_more;
  while (result == status::need_more) {
    if (state_ == state::data) {
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - pos));
      body.append(in, pos, take);
      pos += take;
      remaining_ -= take;
      if (remaining_ != 0) break;
      state_ = state::data_crlf;
      continue;
    }
    const std::size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) {
      if (in.size() - pos > 64 * 1024) result = status::bad;  // a line that never ends
      break;
    }
    const std::string_view line(in.data() + pos, eol - pos);
    pos = eol + 2;
    switch (state_) {
      case state::size: {
        const std::string_view digits = line.substr(0, line.find(';'));
        if (digits.empty() || digits.size() > 15) {
          result = status::bad;
          break;
        }
        std::uint64_t n = 0;
        for (char c : digits) {
          if (!std::isxdigit(static_cast<unsigned char>(c))) {
            result = status::bad;
            break;
          }
          n = n * 16 +
              static_cast<std::uint64_t>(std::isdigit(static_cast<unsigned char>(c))
                                             ? c - '0'
                                             : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
        }
        if (result == status::bad) break;
        remaining_ = n;
        state_ = n == 0 ? state::trailer : state::data;
        break;
      }
      case state::data_crlf:
        if (!line.empty()) result = status::bad;
        state_ = state::size;
        break;
      case state::trailer:
        if (line.empty()) {
          state_ = state::done;
          result = status::complete;
        } else {
          const std::size_t colon = line.find(':');
          trailers.push_back(
              {std::string(line.substr(0, colon)),
               colon == std::string_view::npos ? std::string() : std::string(trim(line.substr(colon + 1)))});
        }
        break;
      case state::data:
      case state::done:
        result = status::bad;
        break;
    }
  }
  in.erase(0, pos);
  return result;
}

std::string encode_chunk(std::string_view data) {
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
  return size_line + std::string(data) + "\r\n";
}

std::string encode_chunked(std::string_view body, std::size_t chunk,
                           const std::vector<std::string>& trailers) {
  std::string out;
  out.reserve(body.size() + body.size() / chunk * 12 + 64);
  char size_line[32];
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    const std::size_t n = std::min(chunk, body.size() - at);
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    out += size_line;
    out.append(body.substr(at, n));
    out += "\r\n";
  }
  out += "0\r\n";
  for (const std::string& t : trailers) out += t + "\r\n";
  out += "\r\n";
  return out;
}

}  // namespace cproxy::http_test
