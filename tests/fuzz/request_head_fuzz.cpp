// Fuzz target: a client's request head (http::parse_request with its RFC 9112 framing checks), then
// follow_trail and forward_request_head on every complete head the proxy would forward.
// Invariants: a complete head is a prefix of the input, is complete alone and not one byte shorter;
// the forwarded head re-parses as a complete origin-form request with the same method, version, Host
// and framing (a rewrite must never change where the body ends: request smuggling).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connect/http/head.hpp"
#include "connect/http/rewrite.hpp"
#include "fuzz_check.hpp"

namespace http = cproxy::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  http::request_head head;
  const http::parse_result r = http::parse_request(bytes, head);
  if (r.status != http::parse_status::complete) {
    FUZZ_CHECK(r.consumed == 0);
    return 0;
  }
  FUZZ_CHECK(r.consumed > 0 && r.consumed <= size);
  FUZZ_CHECK(head.version == 10 || head.version == 11);
  FUZZ_CHECK(head.body != http::framing::until_close);
  FUZZ_CHECK((head.body == http::framing::length) ==
             (head.content_length > 0 && head.body != http::framing::chunked));

  // What follows the head (a body, a pipelined request) must not change it.
  http::request_head alone;
  const http::parse_result again = http::parse_request(bytes.substr(0, r.consumed), alone);
  FUZZ_CHECK(again.status == http::parse_status::complete && again.consumed == r.consumed);
  FUZZ_CHECK(alone.method == head.method && alone.target == head.target && alone.body == head.body &&
             alone.content_length == head.content_length && alone.fields.size() == head.fields.size());
  http::request_head shorter;
  FUZZ_CHECK(http::parse_request(bytes.substr(0, r.consumed - 1), shorter).status ==
             http::parse_status::need_more);

  // The proxy forwards a non-CONNECT request once its host named a route.
  const std::string_view named =
      head.host.empty() ? std::string_view(head.authority) : std::string_view(head.host);
  if (head.is_connect() || named.empty()) return 0;
  const http::hop_trail trail = http::follow_trail(head, "api");
  FUZZ_CHECK(trail.hops >= 1 && trail.hops <= http::max_hops);
  FUZZ_CHECK(trail.routes.ends_with("api"));
  if (trail.loop) return 0;
  const http::forward_context ctx{"127.0.0.1", 3456, "http", "api"};
  const std::string forwarded = http::forward_request_head(head, ctx, trail);
  http::request_head out;
  const http::parse_result f = http::parse_request(forwarded, out);
  if (f.status == http::parse_status::too_large) {
    FUZZ_CHECK(forwarded.size() > http::header_limit);
    return 0;
  }
  if (f.status != http::parse_status::complete) {
    std::fprintf(stderr, "forwarded head does not parse (%s):\n%s\n", f.error.c_str(), forwarded.c_str());
  }
  FUZZ_CHECK(f.status == http::parse_status::complete);
  FUZZ_CHECK(f.consumed == forwarded.size());
  FUZZ_CHECK(!out.absolute_form);
  FUZZ_CHECK(out.method == head.method);
  FUZZ_CHECK(out.version == head.version);
  FUZZ_CHECK(out.host == named);
  FUZZ_CHECK(out.body == head.body);
  FUZZ_CHECK(out.content_length == head.content_length);
  FUZZ_CHECK(out.upgrade_websocket == head.upgrade_websocket);
  return 0;
}
