// record's helpers: its memory footprint and its field lines split into pairs.
#include "connect/inspect/record.hpp"

#include <algorithm>

namespace cproxy::inspect {

namespace {

constexpr std::size_t cache_line = 64;
// What reuse() keeps of a string's buffer, at most.
constexpr std::size_t kept_capacity = 2048;

// A prefetch with intent to write: the record is emptied and filled again next.
void prefetch_range(const void* start, std::size_t bytes) noexcept {
  const char* p = static_cast<const char*>(start);
  for (std::size_t at = 0; at < bytes; at += cache_line) __builtin_prefetch(p + at, 1);
}

}  // namespace

std::size_t record::footprint() const noexcept {
  return sizeof(record) + route.capacity() + method.capacity() + host.capacity() + path.capacity() +
         error.capacity() + request_head.capacity() + response_head.capacity() +
         request_body.bytes.capacity() + response_body.bytes.capacity() + replay_token.capacity();
}

void record::reuse() {
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

void record::prefetch_self() const noexcept {
  // From one line before: a record made by make_shared has its reference counts just ahead of it, and
  // the store reads them before it reuses the record.
  prefetch_range(reinterpret_cast<const char*>(this) - cache_line, sizeof(record) + cache_line);
}

void record::prefetch_buffers() const noexcept {
  for (const std::string* s : {&route, &method, &host, &path, &error, &request_head, &response_head,
                               &request_body.bytes, &response_body.bytes, &replay_token})
    prefetch_range(s->data(), std::min(s->capacity(), kept_capacity));
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
