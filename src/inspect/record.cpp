// record's helpers: its memory footprint and its field lines split into pairs.
#include "connect/inspect/record.hpp"

namespace cproxy::inspect {

std::size_t record::footprint() const noexcept {
  return sizeof(record) + route.capacity() + method.capacity() + host.capacity() + path.capacity() +
         error.capacity() + request_head.capacity() + response_head.capacity() +
         request_body.bytes.capacity() + response_body.bytes.capacity() + replay_token.capacity();
}

void record::reuse() {
  constexpr std::size_t kept_capacity = 2048;
  record fresh;
  // Each buffer moves into `fresh` emptied. A large one is freed here: the store's byte bound counts
  // capacity, and the assignment below would keep it (moving an empty string copies its characters).
  const auto keep = [](std::string& from, std::string& to) {
    if (from.capacity() > kept_capacity) {
      std::string().swap(from);
      return;
    }
    from.clear();
    to = std::move(from);
  };
  keep(route, fresh.route);
  keep(method, fresh.method);
  keep(host, fresh.host);
  keep(path, fresh.path);
  keep(error, fresh.error);
  keep(request_head, fresh.request_head);
  keep(response_head, fresh.response_head);
  keep(request_body.bytes, fresh.request_body.bytes);
  keep(response_body.bytes, fresh.response_body.bytes);
  keep(replay_token, fresh.replay_token);
  *this = std::move(fresh);
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
