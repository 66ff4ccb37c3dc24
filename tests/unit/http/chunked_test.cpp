// Unit tests for connect/http/chunked.hpp: the chunked-body scanner fed byte arrays whole, one byte at a
// time and in random splits (the result must not depend on how the bytes arrive), with extensions,
// trailers, the last chunk, malformed and overflowing sizes, and the next message's bytes left unused.
#include "connect/http/chunked.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/unit_test.hpp"

namespace {

using namespace std::string_literals;
using scanner = cproxy::http::chunked_scanner;

std::string text(scanner::status s) {
  switch (s) {
    case scanner::status::more:
      return "more";
    case scanner::status::done:
      return "done";
    case scanner::status::invalid:
      return "invalid";
  }
  return "?";
}

// What a whole run of the scanner decided: its last status and how many bytes belong to the body.
struct outcome {
  std::string status;
  std::size_t used = 0;
};

// Feeds `bytes` cut at `cuts` (ascending offsets), as a relay would hand them over, stopping at the
// first done or invalid. `used` sums the bytes each call claimed.
outcome run(std::string_view bytes, const std::vector<std::size_t>& cuts) {
  scanner s;
  outcome o;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(bytes.size());
  for (const std::size_t to : ends) {
    if (to < from) continue;
    std::size_t used = 0;
    const scanner::status st = s.feed(bytes.substr(from, to - from), used);
    o.status = text(st);
    if (st == scanner::status::invalid) return o;
    o.used += used;
    if (st == scanner::status::done) return o;
    from = to;
  }
  return o;
}

outcome whole(std::string_view bytes) {
  return run(bytes, {});
}

outcome byte_by_byte(std::string_view bytes) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < bytes.size(); ++i) cuts.push_back(i);
  return run(bytes, cuts);
}

// Every way of feeding `bytes` gives `expected`: whole, one byte at a time, cut once at every offset,
// and 200 random splits.
void same_result_however_split(std::string_view bytes, const outcome& expected) {
  const outcome w = whole(bytes);
  BOOST_TEST(w.status == expected.status);
  if (expected.status != "invalid") BOOST_TEST(w.used == expected.used);
  const outcome b = byte_by_byte(bytes);
  BOOST_TEST(b.status == expected.status);
  if (expected.status != "invalid") BOOST_TEST(b.used == expected.used);
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    BOOST_TEST_CONTEXT("one cut at " << cut) {
      const outcome o = run(bytes, {cut});
      BOOST_TEST(o.status == expected.status);
      if (expected.status != "invalid") BOOST_TEST(o.used == expected.used);
    }
  }
  std::mt19937 rng(20240115);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    std::uniform_int_distribution<std::size_t> step(1, 9);
    for (std::size_t at = step(rng); at < bytes.size(); at += step(rng)) cuts.push_back(at);
    BOOST_TEST_CONTEXT("random split, round " << round) {
      const outcome o = run(bytes, cuts);
      BOOST_TEST(o.status == expected.status);
      if (expected.status != "invalid") BOOST_TEST(o.used == expected.used);
    }
  }
}

// A body with two data chunks (one with extensions), a trailer section and the last chunk.
const std::string typical_body =
    "5\r\nhello\r\n"
    "1A;name=value;flag;q=\"quoted ;\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "0\r\n"
    "Expires: never\r\n"
    "X-Checksum: 42\r\n"
    "\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(http_chunked)

BOOST_AUTO_TEST_CASE(last_chunk_alone) {
  const outcome o = whole("0\r\n\r\n");
  BOOST_TEST(o.status == "done");
  BOOST_TEST(o.used == 5u);
}

BOOST_AUTO_TEST_CASE(typical_body_whole) {
  const outcome o = whole(typical_body);
  BOOST_TEST(o.status == "done");
  BOOST_TEST(o.used == typical_body.size());
}

BOOST_AUTO_TEST_CASE(split_at_every_byte_boundary_gives_the_same_result) {
  same_result_however_split(typical_body, {"done", typical_body.size()});
}

BOOST_AUTO_TEST_CASE(bytes_after_the_end_are_left_unused) {
  const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  same_result_however_split(typical_body + next, {"done", typical_body.size()});
  // Even when they arrive in the same call as the last byte of the body.
  scanner s;
  std::size_t used = 0;
  BOOST_TEST(text(s.feed("0\r\n\r\n0\r\n\r\n", used)) == "done");
  BOOST_TEST(used == 5u);
}

BOOST_AUTO_TEST_CASE(after_done_nothing_more_is_claimed) {
  scanner s;
  std::size_t used = 99;
  BOOST_TEST(text(s.feed("0\r\n\r\n", used)) == "done");
  BOOST_TEST(used == 5u);
  BOOST_TEST(text(s.feed("5\r\nhello\r\n", used)) == "done");
  BOOST_TEST(used == 0u);
}

BOOST_AUTO_TEST_CASE(more_until_the_end_and_every_byte_claimed) {
  scanner s;
  std::size_t used = 0;
  BOOST_TEST(text(s.feed("5\r\nhel", used)) == "more");
  BOOST_TEST(used == 6u);
  BOOST_TEST(text(s.feed("", used)) == "more");
  BOOST_TEST(used == 0u);
  BOOST_TEST(text(s.feed("lo\r\n0\r\n", used)) == "more");
  BOOST_TEST(used == 7u);
  BOOST_TEST(text(s.feed("\r\n", used)) == "done");
  BOOST_TEST(used == 2u);
}

BOOST_AUTO_TEST_CASE(hex_sizes_in_either_case_and_with_leading_zeros) {
  const std::string data(0xab, 'd');
  same_result_however_split("aB\r\n" + data + "\r\n0\r\n\r\n", {"done", 4 + data.size() + 2 + 5});
  same_result_however_split("000003\r\nabc\r\n0000\r\n\r\n", {"done", 21});
}

BOOST_AUTO_TEST_CASE(chunk_extensions) {
  const std::string body = "3;a=1\r\nabc\r\n4;token;q=\"x y\"\r\nwxyz\r\n0;last=yes\r\n\r\n";
  same_result_however_split(body, {"done", body.size()});
}

BOOST_AUTO_TEST_CASE(trailers) {
  const std::string body = "0\r\nX-One: 1\r\nX-Two: two words\r\n\r\n";
  same_result_however_split(body, {"done", body.size()});
}

BOOST_AUTO_TEST_CASE(trailer_lines_are_handed_over_one_byte_at_a_time_too) {
  const std::string body = "2\r\nab\r\n0\r\nX-One: 1\r\nX-Two: two words\r\n\r\n";
  for (const std::size_t step : {body.size(), std::size_t{1}}) {
    scanner s;
    std::string data, trailers;
    std::size_t at = 0, used = 0;
    scanner::status st = scanner::status::more;
    while (at < body.size() && st == scanner::status::more) {
      st = s.feed(std::string_view(body).substr(at, step), used, &data, &trailers);
      at += used;
    }
    BOOST_TEST(text(st) == "done");
    BOOST_TEST(data == "ab");
    BOOST_TEST(trailers == "X-One: 1\nX-Two: two words\n");
  }
}

BOOST_AUTO_TEST_CASE(data_holding_crlf_and_zero_bytes_is_opaque) {
  const std::string body = "8\r\n0\r\n\r\n\0\r\n\r\n0\r\n\r\n"s;
  BOOST_TEST_REQUIRE(body.size() == 18u);
  same_result_however_split(body, {"done", body.size()});
}

BOOST_AUTO_TEST_CASE(large_size_within_15_hex_digits) {
  scanner s;
  std::size_t used = 0;
  BOOST_TEST(text(s.feed("FFFFFFFFFFFFFFF\r\nab", used)) == "more");
  BOOST_TEST(used == 19u);
  BOOST_TEST(s.payload_bytes() == 2u);
}

// --- malformed bodies: each is invalid however it is split ---

BOOST_AUTO_TEST_CASE(invalid_hex) {
  same_result_however_split("g\r\nabc\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("5g\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("0x5\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("-1\r\n", {"invalid", 0});
  same_result_however_split("+5\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(empty_size) {
  same_result_however_split("\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split(";ext\r\n", {"invalid", 0});
  same_result_however_split("5\r\nhello\r\n\r\n", {"invalid", 0});  // no last chunk, just a blank line
}

BOOST_AUTO_TEST_CASE(whitespace_in_front_of_a_size) {
  same_result_however_split(" 5\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(bare_lf_after_a_size) {
  same_result_however_split("5\nhello\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("5\r\rhello\r\n0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(missing_crlf_after_data) {
  same_result_however_split("5\r\nhelloX\r\n0\r\n\r\n", {"invalid", 0});  // one byte too many
  same_result_however_split("5\r\nhello0\r\n\r\n", {"invalid", 0});
  same_result_however_split("5\r\nhello\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("5\r\nhello\r0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(size_of_16_or_more_hex_digits_overflows) {
  same_result_however_split("FFFFFFFFFFFFFFFF\r\n", {"invalid", 0});
  same_result_however_split("10000000000000000\r\n", {"invalid", 0});
  same_result_however_split("0000000000000000000005\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(control_characters_in_an_extension) {
  same_result_however_split("5;a\x01\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
  same_result_however_split("5;a\0b\r\nhello\r\n0\r\n\r\n"s, {"invalid", 0});
  same_result_however_split("5;a\nb\r\nhello\r\n0\r\n\r\n", {"invalid", 0});
}

BOOST_AUTO_TEST_CASE(malformed_trailers) {
  same_result_however_split("0\r\n folded: 1\r\n\r\n", {"invalid", 0});  // obs-fold as the first line
  same_result_however_split("0\r\nX: 1\r\n\tmore\r\n\r\n", {"invalid", 0});
  same_result_however_split("0\r\nX: 1\n\r\n", {"invalid", 0});  // bare LF
  same_result_however_split("0\r\nX: 1\r\n\n", {"invalid", 0});
  same_result_however_split("0\r\nX: a\x01\r\n\r\n", {"invalid", 0});
  same_result_however_split("0\r\n\rX", {"invalid", 0});  // bare CR where the last CRLF belongs
}

BOOST_AUTO_TEST_SUITE_END()
