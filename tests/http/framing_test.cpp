// Message framing (product.md, RFC 9112 strictly): every ambiguous or malformed request gets 400 (431 for a
// head over 64 KiB) and its connection closed, and no upstream ever sees it, nor a request smuggled behind
// it; an ambiguous upstream response becomes 502. Raw sockets, exact bytes, both io backends.
#include <boost/json.hpp>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <ostream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

// Two routed upstreams, so that a request whose target and Host disagree would reach one of them if the
// proxy believed either.
struct framing_env {
  scripted_upstream api{"api"};
  scripted_upstream web{"web"};
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""}, {"web", web.port(), ""}}, .extra = "", .args = {}}};

  framing_env() {
    api.on("/framing-response/cl-te", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
      return false;
    });
    api.on("/framing-response/two-cl", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
      return false;
    });
    api.on("/framing-response/bad-cl", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc");
      return false;
    });
  }
};

// head: rejected from the head, or from body bytes that arrived with it (a chunk size in the same
// packet: product.md says they are checked before any upstream is dialled): 400 and close, the upstream
// sees nothing.
enum class found_in { head };

struct framing_case {
  std::string name;
  std::string bytes;  // "{M}" stands for a marker unique to the case and backend
  found_in where;
};

std::ostream& operator<<(std::ostream& os, const framing_case& c) {
  return os << c.name;
}

const std::string smuggled = "GET /smuggled/{M} HTTP/1.1\r\nHost: api.localhost\r\n\r\n";

std::vector<framing_case> framing_cases() {
  using namespace std::string_literals;
  const std::string start = "POST /framing/{M} HTTP/1.1\r\nHost: api.localhost\r\n";
  const std::string get = "GET /framing/{M} HTTP/1.1\r\n";
  return {
      {"content_length_and_transfer_encoding",
       start + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, found_in::head},
      {"transfer_encoding_and_content_length",
       start + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"two_differing_content_lengths", start + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
       found_in::head},
      {"a_content_length_list_that_differs", start + "Content-Length: 5, 6\r\n\r\nhello!", found_in::head},
      {"content_length_plus_5", start + "Content-Length: +5\r\n\r\nhello", found_in::head},
      {"content_length_minus_5", start + "Content-Length: -5\r\n\r\nhello", found_in::head},
      {"content_length_hex", start + "Content-Length: 0x5\r\n\r\nhello", found_in::head},
      {"content_length_2_to_the_64_plus_1", start + "Content-Length: 18446744073709551617\r\n\r\nhello",
       found_in::head},
      {"content_length_40_digits",
       start + "Content-Length: 1000000000000000000000000000000000000005\r\n\r\nhello", found_in::head},
      {"transfer_encoding_gzip", start + "Transfer-Encoding: gzip\r\n\r\nhello", found_in::head},
      {"transfer_encoding_identity", start + "Transfer-Encoding: identity\r\n\r\nhello", found_in::head},
      {"transfer_encoding_chunked_then_gzip",
       start + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + smuggled, found_in::head},
      {"transfer_encoding_fields_chunked_then_gzip",
       start + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"transfer_encoding_on_http_1_0",
       "POST /framing/{M} HTTP/1.0\r\nHost: api.localhost\r\nTransfer-Encoding: "
       "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
           smuggled,
       found_in::head},
      {"bad_chunk_size", start + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"chunk_size_overflow",
       start + "Transfer-Encoding: chunked\r\n\r\n1fffffffffffffffff5\r\nhello\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"chunk_size_2_to_the_64_plus_5",
       start + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"bare_lf_after_a_field", get + "Host: api.localhost\nX-A: 1\r\n\r\n", found_in::head},
      {"bare_lf_everywhere", "GET /framing/{M} HTTP/1.1\nHost: api.localhost\n\n", found_in::head},
      {"bare_lf_ending_the_head", get + "Host: api.localhost\r\n\n", found_in::head},
      {"bare_cr_inside_a_field", get + "Host: api.localhost\r\nX-A: 1\rX-B: 2\r\n\r\n", found_in::head},
      {"bare_cr_in_the_request_line", "GET /framing/{M}\rX HTTP/1.1\r\nHost: api.localhost\r\n\r\n",
       found_in::head},
      {"nul_in_a_value", get + "Host: api.localhost\r\nX-A: a\0b\r\n\r\n"s, found_in::head},
      {"control_char_in_a_value", get + "Host: api.localhost\r\nX-A: a\x01z\r\n\r\n", found_in::head},
      {"del_in_a_value", get + "Host: api.localhost\r\nX-A: a\x7fz\r\n\r\n", found_in::head},
      {"control_char_in_a_name",
       get + "Host: api.localhost\r\nX-\x02"
             "A: 1\r\n\r\n",
       found_in::head},
      {"space_before_the_colon", get + "Host: api.localhost\r\nX-A : 1\r\n\r\n", found_in::head},
      {"space_before_the_colon_of_transfer_encoding",
       start + "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
       found_in::head},
      {"tab_before_the_colon", get + "Host: api.localhost\r\nX-A\t: 1\r\n\r\n", found_in::head},
      {"obs_fold_with_a_space", get + "Host: api.localhost\r\nX-A: 1\r\n 2\r\n\r\n", found_in::head},
      {"obs_fold_with_a_tab", get + "Host: api.localhost\r\nX-A: 1\r\n\t2\r\n\r\n", found_in::head},
      {"http_1_1_without_host", get + "Accept: */*\r\n\r\n", found_in::head},
      {"two_equal_hosts", get + "Host: api.localhost\r\nHost: api.localhost\r\n\r\n", found_in::head},
      {"two_different_hosts", get + "Host: api.localhost\r\nHost: web.localhost\r\n\r\n", found_in::head},
      {"absolute_form_whose_authority_differs_from_host",
       "GET http://api.localhost/framing/{M} HTTP/1.1\r\nHost: web.localhost\r\n\r\n", found_in::head},
      {"absolute_form_with_userinfo",
       "GET http://user:secret@api.localhost/framing/{M} HTTP/1.1\r\nHost: api.localhost\r\n\r\n",
       found_in::head},
  };
}

std::string with_marker(std::string bytes, const std::string& marker) {
  for (std::size_t at = bytes.find("{M}"); at != std::string::npos;
       at = bytes.find("{M}", at + marker.size())) {
    bytes.replace(at, 3, marker);
  }
  return bytes;
}

// A request that must pass, sent after the bad one: once it has been answered, whatever the proxy did
// with the bad one has reached the upstream.
void barrier(unsigned port, const std::string& marker) {
  const auto r = round_trip(port, request("GET", "api.localhost", "/framing-barrier/" + marker));
  BOOST_REQUIRE_MESSAGE(r.response, "the proxy stopped serving after the bad request: " << r.error);
  BOOST_TEST(r.response->status == 200);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(framing, with_env<framing_env>, *shared_env<framing_env>())

BOOST_DATA_TEST_CASE(a_malformed_request_gets_400_and_a_close_and_never_reaches_an_upstream,
                     bdata::make(backends) * bdata::make(framing_cases()), io, bad) {
  const unsigned port = env.proxies.get(io).port();
  const std::string marker = bad.name + "-" + io;
  const std::string bytes = with_marker(bad.bytes, marker);
  BOOST_TEST_INFO("sent: " << printable(bytes));
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE_MESSAGE(c.send(bytes), c.error());
  const auto r = c.read_response(10s);
  BOOST_REQUIRE_MESSAGE(r, "no response: " << c.error());
  BOOST_TEST(r->status == 400, dump(r->head) << r->body);
  BOOST_TEST(r->get("content-type").value_or("").starts_with("application/json"));
  BOOST_TEST(parse_json(r->body).has_value(), r->body);
  BOOST_TEST(c.wait_closed(10s),
             "the connection stays open after a framing error; then got: " << printable(c.buffer()));

  barrier(port, marker);
  for (const auto* upstream : {&env.api, &env.web}) {
    BOOST_TEST_CONTEXT("upstream " << upstream->name()) {
      BOOST_TEST(!upstream->server().received("/smuggled/" + marker), "a request was smuggled through");
      BOOST_TEST(!upstream->server().received("/framing/" + marker), "the bad request was forwarded");
    }
  }
}

// The chunk size goes bad only after the head was forwarded: the client still gets its 400 (no response
// byte had reached it), both connections close, and the upstream never has a complete request.
BOOST_DATA_TEST_CASE(a_bad_chunk_after_the_head_went_upstream_gets_400, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/framing/late-bad-chunk/") + io;
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE_MESSAGE(
      c.send("POST " + target +
             " HTTP/1.1\r\nHost: api.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
      c.error());
  bool forwarded = false;
  for (int polls = 0; polls < 1000 && !forwarded; ++polls) {
    forwarded = env.api.server().received(target);
    if (!forwarded) std::this_thread::sleep_for(10ms);
  }
  BOOST_REQUIRE_MESSAGE(forwarded, "the head never reached the upstream");
  BOOST_REQUIRE_MESSAGE(c.send("zz\r\nhello\r\n0\r\n\r\n" + with_marker(smuggled, "late-" + std::string(io))),
                        c.error());
  const auto r = c.read_response(10s);
  BOOST_REQUIRE_MESSAGE(r, "no response: " << c.error());
  BOOST_TEST(r->status == 400, dump(r->head) << r->body);
  BOOST_TEST(r->get("content-type").value_or("").starts_with("application/json"));
  BOOST_TEST(c.wait_closed(10s),
             "the connection stays open after a bad chunk; then got: " << printable(c.buffer()));
  barrier(port, std::string("late-bad-chunk-") + io);
  for (const auto& seen : env.api.server().requests_for(target))
    BOOST_TEST(!seen.body_complete, "the upstream got a complete request: " << printable(seen.body));
  BOOST_TEST(!env.api.server().received("/smuggled/late-" + std::string(io)),
             "a request was smuggled through");
}

BOOST_DATA_TEST_CASE(a_head_over_64_kib_gets_431, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string marker = std::string("too-large-") + io;
  // 65 KiB of fields and no blank line: the proxy has read every byte when it decides, so its close
  // cannot turn into a reset that would destroy the 431 before we read it.
  std::string head = "GET /framing/" + marker + " HTTP/1.1\r\nHost: api.localhost\r\n";
  for (int i = 0; head.size() < 65 * 1024; ++i)
    head += "X-Fill-" + std::to_string(i) + ": " + std::string(100, 'a') + "\r\n";
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE_MESSAGE(c.send(head), c.error());
  const auto r = c.read_response(10s);
  BOOST_REQUIRE_MESSAGE(r, "no response: " << c.error());
  BOOST_TEST(r->status == 431);
  BOOST_TEST(r->get("content-type").value_or("").starts_with("application/json"));
  BOOST_TEST(c.wait_closed(10s));
  barrier(port, marker);
  BOOST_TEST(!env.api.server().received("/framing/" + marker));
}

BOOST_DATA_TEST_CASE(a_head_just_under_64_kib_passes, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/framing-big-ok/") + io;
  std::string fields;
  for (int i = 0; fields.size() < 60 * 1024; ++i)
    fields += "X-Fill-" + std::to_string(i) + ": " + std::string(100, 'b') + "\r\n";
  const auto r = round_trip(port, request("GET", "api.localhost", target, fields));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].head.count("x-fill-0") == 1u);
}

BOOST_DATA_TEST_CASE(an_ambiguous_upstream_response_becomes_502, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  for (const std::string& which : std::vector<std::string>{"cl-te", "two-cl", "bad-cl"}) {
    BOOST_TEST_CONTEXT(which) {
      const auto r =
          round_trip(port, request("GET", "api.localhost", "/framing-response/" + which + "/" + io));
      BOOST_REQUIRE_MESSAGE(r.response, r.error);
      BOOST_TEST(r.response->status == 502, dump(r.response->head) << r.response->body);
      BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
      const auto v = parse_json(r.response->body);
      BOOST_TEST((v && v->is_object() && member(v->as_object(), "service") == boost::json::value("api")),
                 r.response->body);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
