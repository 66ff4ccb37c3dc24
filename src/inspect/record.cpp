// record's helpers: its memory footprint and its field lines split into pairs.
#include "connect/inspect/record.hpp"

namespace cproxy::inspect {

std::size_t record::footprint() const noexcept {
  return sizeof(record) + route.capacity() + method.capacity() + host.capacity() + path.capacity() +
         error.capacity() + request_head.capacity() + response_head.capacity() +
         request_body.bytes.capacity() + response_body.bytes.capacity() + replay_token.capacity();
}

std::string_view field_lines_of(std::string_view head) noexcept {
  const std::size_t start = head.find("\r\n");
  if (start == std::string_view::npos) return {};
  head.remove_prefix(start + 2);
  const std::size_t end = head.find("\r\n\r\n");
  return end == std::string_view::npos ? head : head.substr(0, end + 2);
}

header_list header_lines(std::string_view block) {
  header_list out;
  std::size_t at = 0;
  while (at < block.size()) {
    const std::size_t end = block.find("\r\n", at);
    const std::string_view line = block.substr(at, end == std::string_view::npos ? block.npos : end - at);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      out.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    if (end == std::string_view::npos) break;
    at = end + 2;
  }
  return out;
}

}  // namespace cproxy::inspect
