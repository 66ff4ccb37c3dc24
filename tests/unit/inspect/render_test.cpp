// inspect::render's text: milliseconds are written as plain decimals to the microsecond ("4.2", never
// Boost.JSON's "4.2E0"), in the summary, the detail and the HAR alike; the summary's exact text.
#include "connect/inspect/render.hpp"

#include <boost/json.hpp>

#include "support/unit_test.hpp"

namespace inspect = cproxy::inspect;

namespace {

inspect::record timed(double total, double connect, double first_byte) {
  inspect::record r;
  r.id = 7;
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'780'000'000'123));
  r.route = "api";
  r.method = "GET";
  r.host = "api.localhost:3456";
  r.path = "/users";
  r.status = 200;
  r.duration_ms = total;
  r.connect_ms = connect;
  r.first_byte_ms = first_byte;
  r.response_bytes = 120;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(inspect_render)

BOOST_AUTO_TEST_CASE(the_summary_writes_milliseconds_as_plain_decimals) {
  const inspect::record r = timed(4.2, 0.015, -1);
  BOOST_TEST(
      inspect::summary_json(r) ==
      R"({"id":7,"time":")" + inspect::iso_time(r.time) +
          R"(","route":"api","method":"GET","host":"api.localhost:3456","path":"/users",)"
          R"("protocol":"http/1.1","status":200,"durationMs":4.2,"requestBytes":0,"responseBytes":120,)"
          R"("error":null,"timings":{"connectMs":0.015,"firstByteMs":null,"totalMs":4.2}})");
}

BOOST_AUTO_TEST_CASE(milliseconds_are_rounded_to_the_microsecond_without_exponent) {
  struct expectation {
    double ms;
    std::string text;
  };
  for (const expectation& e : std::vector<expectation>{{12.0, "12"},
                                                       {1234.5678, "1234.568"},
                                                       {0.0004, "0"},
                                                       {0.001, "0.001"},
                                                       {98765432.25, "98765432.25"},
                                                       {1e-9, "0"}}) {
    BOOST_TEST_CONTEXT(e.ms) {
      const std::string summary = inspect::summary_json(timed(e.ms, -1, -1));
      BOOST_TEST(summary.find(R"("durationMs":)" + e.text + ",") != std::string::npos, summary);
      BOOST_TEST(summary.find(R"("totalMs":)" + e.text + "}") != std::string::npos, summary);
    }
  }
}

BOOST_AUTO_TEST_CASE(detail_and_har_have_no_exponent_either) {
  const inspect::record r = timed(1234.5678, 1.25, 2.5);
  const std::string detail = inspect::detail_json(r);
  BOOST_TEST(detail.find(R"("timings":{"connectMs":1.25,"firstByteMs":2.5,"totalMs":1234.568})") !=
                 std::string::npos,
             detail);
  const std::vector<inspect::record_ptr> records{std::make_shared<const inspect::record>(r)};
  const std::string har = inspect::har_json(records, true, "1.0");
  BOOST_TEST(har.find(R"("time":1234.568,)") != std::string::npos, har);
  BOOST_TEST(har.find(R"("connect":1.25,"send":0,"wait":1.25,"receive":1232.068,)") != std::string::npos,
             har);
  for (const std::string& text : {detail, har}) {
    const boost::json::value v = boost::json::parse(text);  // still JSON
    BOOST_TEST(v.is_object());
    BOOST_TEST(text.find("E0") == std::string::npos, text);
    BOOST_TEST(text.find("e+") == std::string::npos, text);
  }
}

BOOST_AUTO_TEST_SUITE_END()
