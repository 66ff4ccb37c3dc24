// record: one finished exchange as the request inspector keeps it: what was asked and answered (heads as
// forwarded / as received, bodies up to a limit), where it went, how long each step took, how it ended.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cproxy::inspect {

using header_list = std::vector<std::pair<std::string, std::string>>;

// The fields of a block of "Name: value\r\n" lines (up to an empty line).
header_list header_lines(std::string_view block);
// The field lines of an HTTP/1.x head's text: what follows its start line, without the empty line.
std::string_view field_lines_of(std::string_view head) noexcept;

// A body as captured: its first `limit` bytes at most; past the limit only its size is kept.
struct captured_body {
  std::string bytes;
  std::uint64_t size = 0;
  bool truncated = false;

  void add(std::string_view chunk, std::uint64_t limit) {
    size += chunk.size();
    if (truncated) return;
    if (bytes.size() + chunk.size() > limit) {
      // Over the limit the body is kept as its size only (the contract), never as a misleading prefix.
      truncated = true;
      std::string().swap(bytes);
      return;
    }
    bytes.append(chunk);
  }
};

struct record {
  std::uint64_t id = 0;
  std::chrono::system_clock::time_point time;  // when the request head was complete
  std::string route;                           // the route name; "" when the proxy answered itself
  std::string method, host, path;
  std::string protocol = "http/1.1";  // http/1.1, h2, websocket, connect
  unsigned status = 0;                // 0: no response was sent
  double duration_ms = 0;
  double connect_ms = -1;            // -1: no upstream connection was made
  double first_byte_ms = -1;         // -1: no response head came from the upstream
  std::uint64_t request_bytes = 0;   // the request body
  std::uint64_t response_bytes = 0;  // head and body, as sent to the client
  std::string error;                 // the proxy's own answer ("upstream refused"); "" when none
  // The heads' field lines ("Name: value\r\n" each, no start line), kept as one string each: a copy
  // per exchange instead of one per field; split into pairs only when someone reads them.
  std::string request_head;   // as forwarded (as received when it went nowhere)
  std::string response_head;  // as received from the upstream, or the proxy's own
  captured_body request_body, response_body;
  std::string replay_token;  // set on a replay's record so the replay can name it

  header_list request_headers() const { return header_lines(request_head); }
  header_list response_headers() const { return header_lines(response_head); }
  // The bytes this record holds, for the store's byte bound.
  std::size_t footprint() const noexcept;
  // Empties it for another exchange but keeps its strings' buffers (those up to 2 KiB): a record the
  // store let go is filled again instead of allocated anew, string by string, for every request.
  void reuse();
  // Asks the CPU to fetch this record, or the buffers its strings point to, into its caches ahead of
  // use (no effect on what the record holds). See store::add for why.
  void prefetch_self() const noexcept;
  void prefetch_buffers() const noexcept;
};

}  // namespace cproxy::inspect
