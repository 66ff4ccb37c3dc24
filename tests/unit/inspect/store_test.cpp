// inspect::store and render: the count and byte bounds keep the newest, ids are unique across shards,
// since() hands each record out once, filters, and the encodings the JSON relies on.
#include "connect/inspect/store.hpp"

#include <boost/json.hpp>
#include <set>

#include "connect/inspect/render.hpp"
#include "support/unit_test.hpp"

namespace inspect = cproxy::inspect;

namespace {

inspect::record make(std::string route, unsigned status, std::size_t body = 0) {
  inspect::record r;
  r.route = std::move(route);
  r.status = status;
  r.method = "GET";
  r.path = "/";
  r.time = std::chrono::system_clock::now();
  r.request_body.add(std::string(body, 'x'), 1 << 30);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(inspect_store)

BOOST_AUTO_TEST_CASE(the_count_bound_keeps_the_newest_per_shard) {
  inspect::store s({true, 10, 16384, 64u << 20}, 2);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 25; ++i) ids.push_back(s.add(static_cast<unsigned>(i % 2), make("api", 200)));
  const std::set<std::uint64_t> unique(ids.begin(), ids.end());
  BOOST_TEST(unique.size() == ids.size());
  const auto all = s.list({});
  BOOST_TEST(all.size() == 10u);  // the newest 10 of 20 kept in the shards
  BOOST_TEST(all.front()->id == ids.back());
  BOOST_TEST(s.find(ids.back()) != nullptr);
  BOOST_TEST(s.find(ids.front()) == nullptr);
}

// A worker fills the record the store last let go instead of allocating one per request; one that a
// reader still holds is never handed back, and what comes back is empty.
BOOST_AUTO_TEST_CASE(a_record_pushed_out_and_unread_comes_back_empty_for_reuse) {
  inspect::store s({true, 2, 16384, 64u << 20}, 1);
  std::shared_ptr<inspect::record> spare;
  for (int i = 0; i < 2; ++i) {
    s.add(0, std::make_shared<inspect::record>(make("api", 200, 100)), &spare);
    BOOST_TEST(!spare);  // nothing pushed out yet
  }
  const inspect::record_ptr held = s.list({}).back();  // the oldest, which the next add pushes out
  s.add(0, std::make_shared<inspect::record>(make("api", 201, 100)), &spare);
  BOOST_TEST(!spare);  // a reader holds it
  BOOST_TEST(held->status == 200u);
  BOOST_TEST(held->request_body.bytes.size() == 100u);

  s.add(0, std::make_shared<inspect::record>(make("web", 404, 100)), &spare);
  BOOST_REQUIRE(spare);
  BOOST_TEST(spare->route.empty());
  BOOST_TEST(spare->status == 0u);
  BOOST_TEST(spare->id == 0u);
  BOOST_TEST(spare->request_body.bytes.empty());
  BOOST_TEST(spare->request_body.size == 0u);
  BOOST_TEST(spare->protocol == "http/1.1");
  BOOST_TEST(spare->request_body.bytes.capacity() >= 100u);  // its buffer stays for the next body
  const auto kept = s.list({});
  BOOST_REQUIRE(kept.size() == 2u);
  BOOST_TEST(kept[0]->status == 404u);
  BOOST_TEST(kept[1]->status == 201u);
}

// A reused record keeps small buffers only: a 1 MiB body's would count against the store's byte bound
// in every record filled after it (found by inspector_bounds in the http suite).
BOOST_AUTO_TEST_CASE(a_reused_record_lets_its_large_buffers_go) {
  inspect::record big = make("big", 200, 1 << 20);
  big.response_head.assign(300, 'h');
  big.reuse();
  BOOST_TEST(big.request_body.bytes.empty());
  BOOST_TEST(big.request_body.bytes.capacity() <= 2048u);
  BOOST_TEST(big.response_head.capacity() >= 300u);
  BOOST_TEST(big.footprint() < 4096u);
}

BOOST_AUTO_TEST_CASE(the_byte_bound_drops_the_oldest) {
  inspect::store s({true, 1000, 1 << 20, 4u << 20}, 1);
  std::uint64_t last = 0;
  for (int i = 0; i < 40; ++i) last = s.add(0, make("api", 200, 512 * 1024));
  const auto all = s.list({});
  BOOST_TEST(all.size() < 8u);
  BOOST_TEST(all.size() >= 6u);
  BOOST_TEST(all.front()->id == last);
}

BOOST_AUTO_TEST_CASE(since_hands_out_each_record_once) {
  inspect::store s({}, 3);
  std::vector<std::uint64_t> cursor;
  BOOST_TEST(s.since(&cursor).empty());
  for (unsigned i = 0; i < 7; ++i) s.add(i % 3, make("api", 200));
  BOOST_TEST(s.since(&cursor).size() == 7u);
  BOOST_TEST(s.since(&cursor).empty());
  s.add(1, make("web", 200));
  const auto next = s.since(&cursor);
  BOOST_REQUIRE(next.size() == 1u);
  BOOST_TEST(next[0]->route == "web");
}

BOOST_AUTO_TEST_CASE(filters_by_route_status_and_class_with_a_limit) {
  inspect::store s({}, 1);
  s.add(0, make("api", 200));
  s.add(0, make("api", 404));
  s.add(0, make("web", 502));
  s.add(0, make("", 404));
  BOOST_TEST(s.list({"api", 0, 0, 0}).size() == 2u);
  BOOST_TEST(s.list({"", 404, 0, 0}).size() == 2u);
  BOOST_TEST(s.list({"", 0, 5, 0}).size() == 1u);
  BOOST_TEST(s.list({"", 0, 0, 3}).size() == 3u);
  s.clear();
  BOOST_TEST(s.list({}).empty());
}

BOOST_AUTO_TEST_CASE(a_body_over_the_limit_is_kept_as_its_size) {
  inspect::captured_body b;
  b.add("hello ", 8);
  b.add("world", 8);
  BOOST_TEST(b.truncated);
  BOOST_TEST(b.bytes.empty());
  BOOST_TEST(b.size == 11u);
}

BOOST_AUTO_TEST_CASE(encodings) {
  BOOST_TEST(inspect::base64("") == "");
  BOOST_TEST(inspect::base64("f") == "Zg==");
  BOOST_TEST(inspect::base64("fo") == "Zm8=");
  BOOST_TEST(inspect::base64("foo") == "Zm9v");
  BOOST_TEST(inspect::base64(std::string("\xff\x00\x01", 3)) == "/wAB");
  BOOST_TEST(inspect::is_utf8("plain {\"json\": 1}\n"));
  BOOST_TEST(inspect::is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  BOOST_TEST(!inspect::is_utf8("\xc3"));
  BOOST_TEST(!inspect::is_utf8("\xff\xfe"));
  BOOST_TEST(!inspect::is_utf8(std::string("a\0b", 3)));
  BOOST_TEST(inspect::iso_time(std::chrono::system_clock::time_point(
                 std::chrono::milliseconds(1705314600123))) == "2024-01-15T10:30:00.123Z");
}

BOOST_AUTO_TEST_CASE(binary_bodies_are_base64_in_the_detail) {
  inspect::record r = make("api", 200);
  r.response_body.add(std::string("\x00\x01\x02", 3), 100);
  const boost::json::value v = boost::json::parse(inspect::detail_json(r));
  BOOST_TEST(v.at("response").at("body").as_string() == "AAEC");
  BOOST_TEST(v.at("response").at("bodyEncoding").as_string() == "base64");
  BOOST_TEST(v.at("request").as_object().if_contains("bodyEncoding") == nullptr);
}

BOOST_AUTO_TEST_CASE(header_lines_of_a_head) {
  const std::string_view lines =
      inspect::field_lines_of("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad:  v  \r\n\r\nbody");
  BOOST_TEST(lines == "Host: a\r\nX-Empty:\r\nX-Pad:  v  \r\n");
  const auto h = inspect::header_lines(lines);
  BOOST_REQUIRE(h.size() == 3u);
  BOOST_TEST(h[0].first == "Host");
  BOOST_TEST(h[1].second == "");
  BOOST_TEST(h[2].second == "v");
}

BOOST_AUTO_TEST_SUITE_END()
