// Fuzz target: an upstream's response head (http::parse_response), the request method a fuzzed choice
// (the first byte), then client_response_head as the client would receive it.
// Invariants: a complete head is a prefix of the input, complete alone and not one byte shorter; the
// client's head re-parses with the same status and, unless the proxy unchunks, the same framing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connect/http/head.hpp"
#include "connect/http/rewrite.hpp"
#include "fuzz_check.hpp"

namespace http = cproxy::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view methods[] = {"GET", "HEAD",   "CONNECT", "POST",
                                                 "PUT", "DELETE", "OPTIONS", "PATCH"};
  const std::string_view method = methods[data[0] % 8];
  const bool keep_alive = (data[0] & 0x08) != 0;
  const bool unchunked = (data[0] & 0x10) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  http::response_head head;
  const http::parse_result r = http::parse_response(bytes, method, head);
  if (r.status != http::parse_status::complete) {
    FUZZ_CHECK(r.consumed == 0);
    return 0;
  }
  FUZZ_CHECK(r.consumed > 0 && r.consumed <= bytes.size());
  FUZZ_CHECK(head.version == 10 || head.version == 11);
  FUZZ_CHECK(head.status <= 999);
  if (method == "HEAD" || head.status == 204 || head.status == 304 || head.status / 100 == 1)
    FUZZ_CHECK(head.body == http::framing::none);
  if (head.body == http::framing::until_close) FUZZ_CHECK(!head.keep_alive);

  http::response_head alone;
  const http::parse_result again = http::parse_response(bytes.substr(0, r.consumed), method, alone);
  FUZZ_CHECK(again.status == http::parse_status::complete && again.consumed == r.consumed);
  FUZZ_CHECK(alone.status == head.status && alone.body == head.body &&
             alone.content_length == head.content_length);
  http::response_head shorter;
  FUZZ_CHECK(http::parse_response(bytes.substr(0, r.consumed - 1), method, shorter).status ==
             http::parse_status::need_more);

  const bool unchunk = unchunked && head.body == http::framing::chunked;
  const std::string client = http::client_response_head(head, keep_alive && head.keep_alive, unchunk);
  http::response_head out;
  const http::parse_result c = http::parse_response(client, method, out);
  if (c.status == http::parse_status::too_large) {
    FUZZ_CHECK(client.size() > http::header_limit);
    return 0;
  }
  if (c.status != http::parse_status::complete) {
    std::fprintf(stderr, "client head does not parse (%s):\n%s\n", c.error.c_str(), client.c_str());
  }
  FUZZ_CHECK(c.status == http::parse_status::complete);
  FUZZ_CHECK(c.consumed == client.size());
  FUZZ_CHECK(out.status == head.status);
  if (!unchunk) {
    FUZZ_CHECK(out.body == head.body);
    FUZZ_CHECK(out.content_length == head.content_length);
  }
  return 0;
}
