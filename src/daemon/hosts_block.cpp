// Implementation of connect/daemon/hosts_block.hpp: line splitting that remembers each line's end, so
// that everything outside the block is copied as bytes, never re-joined.
#include "connect/daemon/hosts_block.hpp"

#include <algorithm>
#include <optional>

namespace cproxy::control {
namespace {

struct line {
  std::size_t start = 0;
  std::size_t next = 0;  // start of the next line: after the '\n', or the file's size
  bool crlf = false;
  bool terminated = false;
  std::string_view content;  // without the line end
};

std::vector<line> split_lines(std::string_view file) {
  std::vector<line> out;
  for (std::size_t at = 0; at < file.size();) {
    const std::size_t nl = file.find('\n', at);
    line l;
    l.start = at;
    l.terminated = nl != std::string_view::npos;
    const std::size_t end = l.terminated ? nl : file.size();
    l.next = l.terminated ? nl + 1 : file.size();
    l.crlf = l.terminated && end > at && file[end - 1] == '\r';
    l.content = file.substr(at, end - at - (l.crlf ? 1 : 0));
    out.push_back(l);
    at = l.next;
  }
  return out;
}

bool is_marker(std::string_view content, std::string_view marker) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!content.empty() && blank(content.front())) content.remove_prefix(1);
  while (!content.empty() && blank(content.back())) content.remove_suffix(1);
  return content == marker;
}

std::string block_text(const std::vector<std::string>& body, std::string_view eol, bool final_eol) {
  std::string out(hosts_begin_marker);
  out += eol;
  for (const std::string& l : body) {
    out += l;
    out += eol;
  }
  out += hosts_end_marker;
  if (final_eol) out += eol;
  return out;
}

}  // namespace

hosts_edit edit_hosts_block(std::string_view file, const std::vector<std::string>& body) {
  hosts_edit out;
  const std::vector<line> lines = split_lines(file);
  std::optional<std::size_t> begin, end;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    if (is_marker(lines[i].content, hosts_begin_marker)) {
      if (begin && !end) {
        out.error = "line " + n + " has \"" + std::string(hosts_begin_marker) + "\" again before \"" +
                    std::string(hosts_end_marker) + "\"";
        return out;
      }
      if (end) {
        out.error = "line " + n + " starts a second connect-proxy block";
        return out;
      }
      begin = i;
    } else if (is_marker(lines[i].content, hosts_end_marker)) {
      if (!begin || end) {
        out.error = "line " + n + " has \"" + std::string(hosts_end_marker) + "\" without \"" +
                    std::string(hosts_begin_marker) + "\" before it";
        return out;
      }
      end = i;
    }
  }
  if (begin && !end) {
    out.error = "line " + std::to_string(*begin + 1) + " has \"" + std::string(hosts_begin_marker) +
                "\" without \"" + std::string(hosts_end_marker) + "\" after it";
    return out;
  }
  if (begin) {
    out.had_block = true;
    const line& first = lines[*begin];
    const line& last = lines[*end];
    std::string_view prefix = file.substr(0, first.start);
    const std::string_view suffix = file.substr(last.next);
    if (body.empty()) {
      // A block that ends the file without a line end was appended after one we added: take it back.
      if (!last.terminated) {
        if (prefix.ends_with("\r\n")) {
          prefix.remove_suffix(2);
        } else if (prefix.ends_with("\n")) {
          prefix.remove_suffix(1);
        }
      }
      out.text = std::string(prefix) + std::string(suffix);
    } else {
      out.text = std::string(prefix) + block_text(body, first.crlf ? "\r\n" : "\n", last.terminated) +
                 std::string(suffix);
    }
    return out;
  }
  out.text = std::string(file);
  if (body.empty()) return out;
  const std::string_view eol = !lines.empty() && lines.front().crlf ? "\r\n" : "\n";
  if (file.empty() || file.back() == '\n') {
    out.text += block_text(body, eol, true);
  } else {
    out.text += eol;
    out.text += block_text(body, eol, false);
  }
  return out;
}

std::vector<std::string> hosts_block_lines(const std::vector<std::string>& names,
                                           const std::vector<std::string>& domains) {
  std::vector<std::string> out;
  for (const std::string& name : names) {
    out.push_back("127.0.0.1 " + name + ".localhost");
    for (const std::string& d : domains)
      if (d != "localhost") out.push_back("127.0.0.1 " + name + "." + d);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace cproxy::control
