// `connect proxy requests` (product.md, Inspector: CLI) against a real daemon in an isolated home: the list
// line by line (compared exactly, built from the API's own values), --json, --route, --har, --follow
// printing a request made after it started, and exit 1 when no proxy runs; over HTTPS, the proxy's
// certificate checked against the home's local CA (a planted other CA makes it refuse). Both io backends.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "isolated_home.hpp"
#include "run_program.hpp"
#include "support/built_backends.hpp"
#include "support/posix_server.hpp"

using namespace std::chrono_literals;
using namespace cproxy::test;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

std::string body_of(const std::string& response) {
  const std::size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

// The line the CLI prints for one summary: time of day (UTC), status, method, URL, duration.
std::string expected_line(const json::object& r) {
  const std::string time(r.at("time").as_string());
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.1fms", r.at("durationMs").to_number<double>());
  return time.substr(11, 12) + " " + std::to_string(r.at("status").to_number<std::int64_t>()) + " " +
         std::string(r.at("method").as_string()) + " http://" + std::string(r.at("host").as_string()) +
         std::string(r.at("path").as_string()) + " " + duration + "\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(requests_cli)

BOOST_DATA_TEST_CASE(lists_exports_and_follows_the_running_proxys_requests,
                     bdata::make(cproxy::test::built_backends), io) {
  isolated_home h;
  request_head_server upstream([](const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  });
  const std::string config = h.home.path + "/config.json";
  std::ofstream(config) << R"({"routes": [{"name": "api", "port": )" << upstream.port()
                        << R"(, "host": "127.0.0.1"}]})";
  const unsigned port = free_port();
  const run_result start =
      run(h, {"proxy", "start", "--port", std::to_string(port), "--threads", "1", "--io", io});
  BOOST_REQUIRE_MESSAGE(start.code == 0, start.err);

  for (const char* path : {"/cli/one", "/cli/two"}) {
    const std::string r = http_request(
        port, "GET " + std::string(path) + " HTTP/1.1\r\nHost: api.localhost\r\nConnection: close\r\n\r\n",
        10s);
    BOOST_REQUIRE(r.starts_with("HTTP/1.1 200"));
  }
  // The API's view, polled until both are recorded.
  std::string api_body;
  for (int i = 0; i < 100; ++i) {
    api_body = body_of(http_request(
        port, "GET /_connect/requests HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s));
    if (api_body.find("/cli/two") != std::string::npos && api_body.find("/cli/one") != std::string::npos)
      break;
    std::this_thread::sleep_for(20ms);
  }
  const json::array list = json::parse(api_body).at("requests").as_array();
  BOOST_REQUIRE_EQUAL(list.size(), 2u);

  const run_result lines = run(h, {"proxy", "requests"});
  BOOST_TEST(lines.code == 0);
  BOOST_TEST(lines.out == expected_line(list[1].as_object()) + expected_line(list[0].as_object()));

  const run_result as_json = run(h, {"proxy", "requests", "--json"});
  BOOST_TEST(as_json.out == api_body + "\n");
  const run_result limited = run(h, {"proxy", "requests", "--limit", "1"});
  BOOST_TEST(limited.out == expected_line(list[0].as_object()));
  BOOST_TEST(run(h, {"proxy", "requests", "--route", "other"}).out == "");

  const std::string har_file = h.home.path + "/out.har";
  const run_result har = run(h, {"proxy", "requests", "--har", har_file});
  BOOST_TEST(har.out == "[ok] Wrote 2 request(s) to " + har_file + "\n");
  std::stringstream har_text;
  har_text << std::ifstream(har_file).rdbuf();
  BOOST_TEST(json::parse(har_text.str()).at("log").at("version").as_string() == "1.2");

  {
    child_process follow(
        {.args = {"proxy", "requests", "--follow"}, .extra_env = h.env(), .refuse_io_uring = false});
    BOOST_REQUIRE(follow.wait_for_stdout("/cli/two", 10s));
    // The event stream may open a moment after the list: requests until one shows up (bounded).
    bool seen = false;
    for (int i = 0; i < 25 && !seen; ++i) {
      const std::string path = "/follow/" + std::to_string(i);
      http_request(port, "GET " + path + " HTTP/1.1\r\nHost: api.localhost\r\nConnection: close\r\n\r\n",
                   10s);
      seen = follow.wait_for_stdout(" GET http://api.localhost" + path + " ", 400ms);
    }
    BOOST_TEST(seen, follow.out());
    follow.signal(SIGINT);
    BOOST_TEST(follow.wait_exit(5s).has_value());
  }
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");

  const run_result stopped = run(h, {"proxy", "requests"});
  BOOST_TEST(stopped.code == 1);
  BOOST_TEST(stopped.err == "[!] Proxy is not running.\n");
  BOOST_TEST(stopped.out == "");
}

BOOST_DATA_TEST_CASE(over_https_the_proxys_certificate_must_come_from_the_local_ca,
                     bdata::make(cproxy::test::built_backends), io) {
  isolated_home h;
  const unsigned port = free_port();
  const run_result start =
      run(h, {"proxy", "start", "--https", "--port", std::to_string(port), "--threads", "1", "--io", io});
  BOOST_REQUIRE_MESSAGE(start.code == 0, start.err);
  // Plain HTTP to an HTTPS proxy is redirected, and recorded: a line for the list to show.
  http_request(port, "GET /tls/one HTTP/1.1\r\nHost: api.localhost\r\nConnection: close\r\n\r\n", 10s);
  run_result trusted;
  for (int i = 0; i < 100 && trusted.out.find("/tls/one") == std::string::npos; ++i) {
    trusted = run(h, {"proxy", "requests"});
    if (trusted.out.find("/tls/one") == std::string::npos) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(trusted.code == 0);
  BOOST_TEST(trusted.err == "");
  BOOST_TEST(trusted.out.find(" GET https://api.localhost/tls/one ") != std::string::npos, trusted.out);

  // Another CA where the home's was: the running proxy's certificate no longer chains to it.
  const std::string ca = h.home.path + "/certs/ca.crt";
  const program_result planted = run_program(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-subj", "/CN=planted CA", "-days", "1", "-keyout", h.home.path + "/planted.key", "-out", ca},
      {});
  BOOST_REQUIRE_MESSAGE(planted.code == 0, planted.err);
  const run_result refused = run(h, {"proxy", "requests"});
  BOOST_TEST(refused.code == 1);
  BOOST_TEST(refused.out == "");
  BOOST_TEST(refused.err == "[x] The proxy's certificate is not from the local CA (" + ca +
                                "): unable to get local issuer certificate\n");
  BOOST_TEST(run(h, {"proxy", "requests", "--follow"}).code == 1);
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_SUITE_END()
