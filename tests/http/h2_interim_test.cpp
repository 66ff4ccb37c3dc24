// Interim (1xx) responses other than 101 over HTTP/2 (RFC 9113 section 8.1), on both io backends: an
// upstream's 103 Early Hints reaches an h2 client as a HEADERS frame without END_STREAM, with its link
// field, before the final response's HEADERS (nghttp -v shows both, over h2c and h2 with TLS), as the
// HTTP/1.1 client gets it as an interim head (curl -v); and a request with Expect: 100-continue over h2
// gets the upstream's 100 Continue, so curl sends its body at once instead of after its expect timeout.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "http/digest.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
using cproxy::test::temp_dir;
namespace bdata = boost::unit_test::data;

namespace {

constexpr const char* early_hints =
    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";

struct interim_env {
  scripted_upstream app{"app"};
  interim_env() {
    app.on("/hints", [](upstream_conn& c, const recorded_request&) {
      return c.write(std::string(early_hints) + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    });
    // The upstream's read_request sent the 100 Continue before reading the body (upstreams.cpp).
    app.on("/expect", [](upstream_conn& c, const recorded_request& r) {
      return c.write(simple_response(200, "OK", sha256_hex(r.body) + " " + std::to_string(r.body_size), {}));
    });
  }
  proxy_config config(std::vector<std::string> args) {
    return proxy_config{.routes = {{"app", app.port(), ""}}, .extra = "", .args = std::move(args)};
  }
  proxy_pool proxies{config({})};
  proxy_pool tls{config({"--https"})};
};

struct with_interim_env : with_env<interim_env> {
  ~with_interim_env() {
    env.tls.check_alive();
    env.tls.show_logs_if_failed();
  }
};

bool has(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// The line of `text` holding `needle`, or "".
std::string line_of(const std::string& text, std::string_view needle, std::size_t from = 0) {
  const std::size_t at = text.find(needle, from);
  if (at == std::string::npos) return {};
  const std::size_t start = text.rfind('\n', at) + 1;
  return text.substr(start, text.find('\n', at) - start);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http2_interim, with_interim_env, *shared_env<interim_env>())

BOOST_DATA_TEST_CASE(early_hints_go_out_as_a_non_final_headers_frame,
                     bdata::make(backends) * bdata::make({false, true}), io, over_tls) {
  proxy_instance& proxy = over_tls ? env.tls.get(io) : env.proxies.get(io);
  const std::string port = std::to_string(proxy.port());
  const std::string target = std::string("/hints-h2-") + io + (over_tls ? "-tls" : "-h2c");
  const std::string url = (over_tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + port + target;
  const auto r =
      run_program({"nghttp", "-v", "--no-dep", "-H", ":authority: app.localhost:" + port, url}, 20s);
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  // nghttp prints a block's fields, then its frame line.
  const std::size_t hints = r.out.find("recv (stream_id=1) :status: 103\n");
  const std::size_t link = r.out.find("recv (stream_id=1) link: </style.css>; rel=preload; as=style\n");
  const std::size_t final_status = r.out.find("recv (stream_id=1) :status: 200\n");
  BOOST_TEST_REQUIRE(hints != std::string::npos, r.out);
  BOOST_TEST_REQUIRE(link != std::string::npos, r.out);
  BOOST_TEST_REQUIRE(final_status != std::string::npos, r.out);
  BOOST_TEST(hints < link);
  BOOST_TEST(link < final_status);
  // The 103's frame: HEADERS with END_HEADERS only (0x04), before the final response's fields.
  const std::string hints_frame = line_of(r.out, "recv HEADERS frame <", link);
  BOOST_TEST(has(hints_frame, "flags=0x04, stream_id=1>"), hints_frame);
  BOOST_TEST(r.out.find("recv HEADERS frame <", link) < final_status, r.out);
  BOOST_TEST(has(r.out, "hello"), r.out);
  BOOST_TEST(!has(r.out, "RST_STREAM"), r.out);
}

// The same upstream answer to an HTTP/1.1 client: the 103 head, then the final one (relay_response).
BOOST_DATA_TEST_CASE(early_hints_reach_an_http11_client_too, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string port = std::to_string(proxy.port());
  const auto r =
      run_program({"curl", "-sS", "-v", "--http1.1", "--max-time", "20", "-H", "Host: app.localhost:" + port,
                   "http://127.0.0.1:" + port + "/hints-h1-" + std::string(io)},
                  30s);
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(has(r.err, "< HTTP/1.1 103 Early Hints\r\n< Link: </style.css>; rel=preload; as=style\r\n"),
             r.err);
  BOOST_TEST(has(r.err, "< HTTP/1.1 200 OK\r\n"), r.err);
  BOOST_TEST(r.out == "hello");
}

// curl waits for the 100 up to --expect100-timeout (20 s here, past --max-time): only a 100 passed on
// over h2 lets the body go within the time, and the upstream's digest of it proves it all came.
BOOST_DATA_TEST_CASE(expect_100_continue_over_h2_gets_the_100_and_the_body_goes,
                     bdata::make(backends) * bdata::make({false, true}), io, over_tls) {
  proxy_instance& proxy = over_tls ? env.tls.get(io) : env.proxies.get(io);
  const std::string port = std::to_string(proxy.port());
  const std::string target = std::string("/expect-") + io + (over_tls ? "-tls" : "-h2c");
  temp_dir dir;
  const std::string body = pattern_body(11, 300 * 1024 + 5);
  const std::string file = dir.write("upload", body);
  std::vector<std::string> args{"curl",
                                "-sS",
                                "-v",
                                "--max-time",
                                "10",
                                "--expect100-timeout",
                                "20",
                                "-H",
                                "Expect: 100-continue",
                                "--data-binary",
                                "@" + file};
  if (over_tls)
    args.insert(args.end(),
                {"--http2", "--cacert", proxy.home() + "/certs/ca.crt", "--resolve",
                 "app.localhost:" + port + ":127.0.0.1", "https://app.localhost:" + port + target});
  else
    args.insert(args.end(), {"--http2-prior-knowledge", "-H", "Host: app.localhost:" + port,
                             "http://127.0.0.1:" + port + target});
  const auto r = run_program(args, 30s);
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(has(r.err, "< HTTP/2 100"), r.err);
  BOOST_TEST(has(r.err, "< HTTP/2 200"), r.err);
  BOOST_TEST(r.out == sha256_hex(body) + " " + std::to_string(body.size()));
  const auto seen = env.app.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].get("expect").value_or("") == "100-continue");
}

BOOST_AUTO_TEST_SUITE_END()
