// Bodies and keep-alive (product.md, HTTP behaviour): 64 MiB each way with SHA-256 at both ends, chunked
// bodies with trailers, pipelining, HTTP/1.0, Expect: 100-continue, bodiless responses (HEAD, 204, 304),
// 1xx interim responses, close-delimited responses, and server-sent events that arrive as they are sent.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>

#include "http/client_helpers.hpp"
#include "http/digest.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

constexpr std::size_t big = 64u << 20;

std::string trailer_summary(const std::vector<field>& trailers) {
  std::string out;
  for (const field& f : trailers) out += lower(f.name) + "=" + f.value + ";";
  return out;
}

struct bodies_env {
  scripted_upstream api{"api", /*record_raw=*/false};
  scripted_upstream web{"web", /*record_raw=*/false};
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""}, {"web", web.port(), ""}}, .extra = "", .args = {}}};

  const std::string download = pattern_body(7, big);
  const std::string download_sha = sha256_hex(download);
  const std::string small = pattern_body(8, (1u << 20) + 3);
  const std::string small_sha = sha256_hex(small);

  // SSE cases hand the upstream a gate per target: it sends event k once the test opened the gate to k.
  std::mutex gates_mu;
  std::map<std::string, std::shared_ptr<gate>> gates;
  std::shared_ptr<gate> gate_for(const std::string& target) {
    std::lock_guard lock(gates_mu);
    auto& g = gates[target];
    if (!g) g = std::make_shared<gate>();
    return g;
  }

  bodies_env() {
    // What arrived: the body's digest and size, how it was framed, and its trailers.
    api.on("/bodies/digest", [](upstream_conn& c, const recorded_request& r) {
      return c.write(
          simple_response(200, "OK", sha256_hex(r.body) + " " + std::to_string(r.body.size()),
                          {"X-Upstream: api", std::string("X-Was-Chunked: ") + (r.chunked ? "yes" : "no"),
                           "X-Trailers: " + trailer_summary(r.trailers)}));
    });
    api.on("/bodies/download", [this](upstream_conn& c, const recorded_request&) {
      return c.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                         std::to_string(download.size()) + "\r\n\r\n",
                     60s) &&
             c.write(download, 60s);
    });
    api.on("/bodies/chunked-response", [this](upstream_conn& c, const recorded_request&) {
      return c.write(
          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
          "Trailer: X-Checksum, X-Second\r\n\r\n" +
          encode_chunked(small, 65521, {"X-Checksum: " + small_sha, "X-Second: 2"}));
    });
    api.on("/bodies/head", [](upstream_conn& c, const recorded_request& r) {
      // The length of the GET's body, and no body, as for a HEAD.
      if (r.method != "HEAD") return c.write(simple_response(405, "Method Not Allowed", "HEAD only"));
      return c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12345\r\n\r\n");
    });
    api.on("/bodies/204", [](upstream_conn& c, const recorded_request&) {
      return c.write("HTTP/1.1 204 No Content\r\nX-Upstream: api\r\n\r\n");
    });
    api.on("/bodies/304", [](upstream_conn& c, const recorded_request&) {
      // A 304 may state the representation's length; it still has no body.
      return c.write("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 500\r\n\r\n");
    });
    api.on("/bodies/103", [](upstream_conn& c, const recorded_request&) {
      return c.write("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n") &&
             c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    api.on("/bodies/close-delimited", [this](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + small);
      return false;  // the close ends the body
    });
    for (const bool chunked : {true, false}) {
      api.on(
          chunked ? "/bodies/sse-chunked" : "/bodies/sse-close",
          [this, chunked](upstream_conn& c, const recorded_request& r) {
            const auto g = gate_for(r.target);
            if (!c.write(
                    std::string(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n") +
                    (chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n") + "\r\n")) {
              return false;
            }
            for (int k = 1; k <= 3; ++k) {
              if (!g->wait_for(k, 20s)) return false;
              const std::string event =
                  "id: " + std::to_string(k) + "\ndata: event " + std::to_string(k) + "\n\n";
              if (!c.write(chunked ? encode_chunk(event) : event)) {
                return false;
              }
            }
            if (chunked) return c.write("0\r\n\r\n");
            return false;
          });
    }
  }
};

// The digest line the upstream answers for `body`.
std::string digest_line(std::string_view body) {
  return sha256_hex(body) + " " + std::to_string(body.size());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(bodies, with_env<bodies_env>, *shared_env<bodies_env>())

// The 64 MiB cases run on a proxy of their own, whose io counters at stop tell how the body went:
// spliced on uring (relay_length splices bodies of 256 KiB or more), copied on asio.
BOOST_DATA_TEST_CASE(a_64_mib_upload_arrives_intact, bdata::make(backends), io) {
  const unsigned port = env.proxies.fresh(io).port();
  const std::string body = pattern_body(11, big);
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE_MESSAGE(c.send(request("POST", "api.localhost", "/bodies/digest/upload",
                                       "Content-Type: application/octet-stream\r\nContent-Length: " +
                                           std::to_string(body.size()) + "\r\n") +
                                   body,
                               60s),
                        c.error());
  const auto r = c.read_response(60s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body == digest_line(body));
  c.close();
  expect_relay_path(env.proxies, io, relay_path::spliced, big);
}

BOOST_DATA_TEST_CASE(a_64_mib_download_arrives_intact, bdata::make(backends), io) {
  const unsigned port = env.proxies.fresh(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/download")));
  const auto r = c.read_response(60s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body.size() == big);
  BOOST_TEST(sha256_hex(r->body) == env.download_sha);
  // Still usable afterwards: the body ended exactly where the proxy said it would.
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/after-download")));
  const auto next = c.read_response();
  BOOST_REQUIRE_MESSAGE(next, c.error());
  BOOST_TEST(next->status == 200);
  c.close();
  expect_relay_path(env.proxies, io, relay_path::spliced, big);
}

BOOST_DATA_TEST_CASE(a_chunked_upload_with_trailers_arrives_intact, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string body = pattern_body(12, (8u << 20) + 5);
  const std::string sha = sha256_hex(body);
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  // Odd chunk sizes, so that chunk boundaries fall anywhere in the proxy's reads.
  BOOST_REQUIRE_MESSAGE(c.send(request("POST", "api.localhost", "/bodies/digest/chunked",
                                       "Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n") +
                                   encode_chunked(body, 65521, {"X-Checksum: " + sha}),
                               60s),
                        c.error());
  const auto r = c.read_response(60s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body == digest_line(body));
  BOOST_TEST(r->get("x-trailers").value_or("") == "x-checksum=" + sha + ";", "trailers lost on the way up");
  // And a small one with a chunk extension and an empty trailer section.
  BOOST_REQUIRE(c.send(
      request("POST", "api.localhost", "/bodies/digest/chunked-small", "Transfer-Encoding: chunked\r\n") +
      "5;ext=1\r\nhello\r\n0\r\n\r\n"));
  const auto small = c.read_response();
  BOOST_REQUIRE_MESSAGE(small, c.error());
  BOOST_TEST(small->body == digest_line("hello"));
}

BOOST_DATA_TEST_CASE(a_chunked_response_with_trailers_arrives_intact, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/chunked-response", "TE: trailers\r\n")));
  const auto r = c.read_response(30s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->chunked, "trailers need a chunked response");
  BOOST_TEST(r->body.size() == env.small.size());
  BOOST_TEST(sha256_hex(r->body) == env.small_sha);
  BOOST_TEST(trailer_summary(r->trailers) == "x-checksum=" + env.small_sha + ";x-second=2;");
}

BOOST_DATA_TEST_CASE(pipelined_requests_are_answered_in_order, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  // One write: three requests to two upstreams, one with a body. A proxy that reads ahead must not lose or
  // reorder any of them.
  const std::string p = std::string("/bodies/pipe/") + io;
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", p + "/1") +
                       request("POST", "web.localhost", p + "/2", "Content-Type: text/plain\r\n", "hello") +
                       request("GET", "api.localhost", p + "/3")));
  const char* const upstreams[] = {"api", "web", "api"};
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST_CONTEXT("response " << i + 1) {
      const auto r = c.read_response();
      BOOST_REQUIRE_MESSAGE(r, c.error());
      BOOST_TEST(r->status == 200);
      BOOST_TEST(r->get("x-upstream").value_or("") == upstreams[i]);
      BOOST_TEST(r->body.find(p + "/" + std::to_string(i + 1) + " HTTP/1.1") != std::string::npos, r->body);
    }
  }
  const auto posted = env.web.server().requests_for(p + "/2");
  BOOST_REQUIRE_EQUAL(posted.size(), 1u);
  BOOST_TEST(posted[0].body == "hello");
}

BOOST_DATA_TEST_CASE(keep_alive_serves_many_requests_on_one_connection, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  for (int i = 0; i < 20; ++i) {
    const std::string body(static_cast<std::size_t>(i) * 1000, 'k');
    BOOST_REQUIRE(c.send(request(i % 2 ? "POST" : "GET", i % 3 ? "api.localhost" : "web.localhost",
                                 "/bodies/digest/keep-alive/" + std::to_string(i), "", body)));
    const auto r = c.read_response();
    BOOST_REQUIRE_MESSAGE(r, "request " << i << ": " << c.error());
    BOOST_TEST(r->status == 200);
    BOOST_TEST(!c.peer_closed());
  }
}

BOOST_DATA_TEST_CASE(an_http_1_0_request_gets_its_response_then_a_close, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  {
    raw_client c(port);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
    BOOST_REQUIRE(c.send("GET /bodies/http10 HTTP/1.0\r\nHost: api.localhost\r\n\r\n"));
    const auto r = c.read_response();
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->status == 200);
    BOOST_TEST(r->get("x-upstream").value_or("") == "api");
    BOOST_TEST(c.wait_closed(10s), "an HTTP/1.0 request without keep-alive ends its connection");
  }
  {
    // A chunked upstream response cannot go to an HTTP/1.0 client as it is (RFC 9112 6.1).
    raw_client c(port);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
    BOOST_REQUIRE(c.send("GET /bodies/chunked-response HTTP/1.0\r\nHost: api.localhost\r\n\r\n"));
    const auto r = c.read_response(30s);
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->status == 200);
    BOOST_TEST(!r->chunked, "an HTTP/1.0 client cannot read chunked: " << dump(r->head));
    BOOST_TEST(sha256_hex(r->body) == env.small_sha);
  }
}

BOOST_DATA_TEST_CASE(expect_100_continue_gets_the_go_ahead_then_the_answer, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  const std::string body = "hello world";
  BOOST_REQUIRE(
      c.send("POST /bodies/digest/expect HTTP/1.1\r\nHost: api.localhost\r\nExpect: 100-continue\r\n"
             "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n"));
  // The body is held back until the 100 arrives, as curl does (but without its 1 s fallback).
  const auto go = c.read_response(10s);
  BOOST_REQUIRE_MESSAGE(go, "no 100 Continue: " << c.error());
  BOOST_TEST(go->status == 100);
  BOOST_REQUIRE(c.send(body));
  const auto r = c.read_final_response();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body == digest_line(body));
}

BOOST_DATA_TEST_CASE(an_upstream_that_ignores_expect_still_gets_the_body, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  const std::string body = "hello again";
  // The upstream never sends a 100; the proxy must not wait for one until the response timeout.
  BOOST_REQUIRE(
      c.send("POST /bodies/digest/ignores-expect HTTP/1.1\r\nHost: api.localhost\r\n"
             "Expect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body));
  const auto r = c.read_final_response(10s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body == digest_line(body));
}

BOOST_DATA_TEST_CASE(a_head_response_has_no_body, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("HEAD", "api.localhost", "/bodies/head")));
  const auto r = c.read_response(10s, /*head_request=*/true);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->get("content-length").value_or("") == "12345");
  // The proxy expected no body either: the connection goes on at once.
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/after-head")));
  const auto next = c.read_response();
  BOOST_REQUIRE_MESSAGE(next, c.error());
  BOOST_TEST(next->status == 200);
  BOOST_TEST(next->body.starts_with("GET /bodies/after-head HTTP/1.1\r\n"), next->body);
}

BOOST_DATA_TEST_CASE(responses_204_and_304_have_no_body, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  for (const std::string& status : std::vector<std::string>{"204", "304", "204"}) {
    BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/" + status)));
    const auto r = c.read_response();
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->status == std::stoi(status));
    BOOST_TEST(r->body.empty());
  }
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/after-204")));
  const auto next = c.read_response();
  BOOST_REQUIRE_MESSAGE(next, c.error());
  BOOST_TEST(next->body.starts_with("GET /bodies/after-204 HTTP/1.1\r\n"), next->body);
}

BOOST_DATA_TEST_CASE(an_interim_1xx_is_relayed_before_the_final_response, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/103")));
  std::vector<http_response> interim;
  const auto r = c.read_final_response(10s, false, &interim);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body == "ok");
  // RFC 9110 15.2: a proxy forwards 1xx responses it did not ask for.
  BOOST_REQUIRE_EQUAL(interim.size(), 1u);
  BOOST_TEST(interim[0].status == 103);
  BOOST_TEST(interim[0].get("link").value_or("") == "</style.css>; rel=preload");
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/after-103")));
  BOOST_TEST(c.read_response().has_value(), c.error());
}

BOOST_DATA_TEST_CASE(a_close_delimited_response_is_relayed_whole, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", "/bodies/close-delimited")));
  // The proxy may pass the close on or re-frame the body as chunked; either way all of it arrives.
  const auto r = c.read_response(30s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->body.size() == env.small.size());
  BOOST_TEST(sha256_hex(r->body) == env.small_sha);
}

BOOST_DATA_TEST_CASE(server_sent_events_arrive_as_they_are_sent,
                     bdata::make(backends) * bdata::make({"/bodies/sse-chunked/", "/bodies/sse-close/"}), io,
                     path) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string(path) + io;
  const auto g = env.gate_for(target);
  struct open_at_exit {
    std::shared_ptr<gate> g;
    ~open_at_exit() { g->open_to(1000); }  // a failed case must not leave the upstream waiting 20 s
  } guard{g};
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", "api.localhost", target, "Accept: text/event-stream\r\n")));
  // Event k+1 is only sent once event k has reached us: a proxy that holds bytes back to fill a buffer
  // never delivers event 1 and the read below runs out.
  for (int k = 1; k <= 3; ++k) {
    g->open_to(k);
    BOOST_REQUIRE_MESSAGE(c.read_until("data: event " + std::to_string(k) + "\n\n", 10s),
                          "event " << k << " did not arrive: " << c.error());
  }
  BOOST_TEST(c.buffer().find("text/event-stream") != std::string::npos, printable(c.buffer()));
}

BOOST_AUTO_TEST_SUITE_END()
