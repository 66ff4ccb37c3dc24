// WebSocket and CONNECT (product.md, HTTP behaviour): a Beast client echoing through the proxy to a Beast
// server, with the forwarding fields on the upgrade; a declined upgrade and a refused upstream; CONNECT
// tunnels that carry bytes unchanged both ways, and CONNECT never becoming an open forward proxy.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "http/client_helpers.hpp"
#include "http/digest.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "http/websocket_echo.hpp"
#include "support/socket_watchdog.hpp"

using namespace cproxy::http_test;
using cproxy::test::socket_watchdog;
namespace bdata = boost::unit_test::data;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// The api upstream: a WebSocket echo server (Beast, sync) for upgrade requests, a 403 for /ws-deny, and
// the scripted upstreams' head echo for plain requests (what a tunnel carries).
void websocket_or_http(upstream_conn& c) {
  for (int i = 0; i < 1000; ++i) {
    const auto req = c.read_request(60s);
    if (!req || !req->body_complete) return;
    if (req->target.find("/ws-deny") != std::string::npos) {
      c.write(simple_response(403, "Forbidden", "no websocket here", {"X-Upstream: api"}));
      return;
    }
    if (!req->head.has_token("upgrade", "websocket")) {
      if (!answer_with_head(c, *req)) return;
      continue;
    }
    serve_websocket_echo(c, *req);  // its throws end the connection (the server catches them)
    return;
  }
}

struct tunnel_env {
  upstream_server api{"api", websocket_or_http};
  std::unique_ptr<upstream_server> raw = make_byte_echo("raw");
  closed_port dead_port;
  proxy_pool proxies{proxy_config{
      .routes = {{"api", api.port(), ""}, {"raw", raw->port(), ""}, {"dead", dead_port.port(), "127.0.0.1"}},
      .extra = R"("timeouts": {"hold": 0})",  // "dead" tests the immediate 502 (holding: hold_test.cpp)
      .args = {}}};
};

std::string upgrade_request(const std::string& host, const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: " + host +
         "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
}

std::string connect_request(const std::string& authority) {
  return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(websocket_connect, with_env<tunnel_env>, *shared_env<tunnel_env>())

// The tunnel cases below that move a MiB each way run on a proxy of their own and check its io counters
// at stop: a CONNECT tunnel splices on uring; an upgraded WebSocket is relayed by copying on every
// backend (src/proxy passes may_splice=false for it).
BOOST_DATA_TEST_CASE(a_websocket_echoes_through_the_proxy, bdata::make(backends), io) {
  const unsigned port = env.proxies.fresh(io).port();
  const std::string p = std::to_string(port);
  const std::string target = std::string("/socket/") + io;
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)));
  socket_watchdog watchdog(ws.next_layer().native_handle(), 30s);
  websocket::response_type handshake;
  boost::system::error_code ec;
  ws.handshake(handshake, "api.localhost:" + p, target, ec);
  BOOST_REQUIRE_MESSAGE(!ec, "handshake: " << ec.message() << "\n" << handshake);
  BOOST_TEST(handshake.result_int() == 101);
  BOOST_TEST(std::string(handshake["X-Upstream"]) == "api");
  BOOST_TEST(std::string(handshake["x-private-connect-proxy"]) == "1");

  // Text, a 1 MiB binary message, and a run of small ones.
  const std::string big = pattern_body(21, 1u << 20);
  std::vector<std::pair<bool, std::string>> messages{{true, "hello through the proxy"}, {false, big}};
  for (int i = 0; i < 50; ++i) messages.emplace_back(true, "message " + std::to_string(i));
  check_websocket_echoes(ws, messages);

  // The upgrade was forwarded with the same rewriting as any request, and stayed an upgrade.
  const auto seen = env.api.requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  const message_head& h = seen[0].head;
  BOOST_TEST_INFO("upstream got: " << dump(h));
  BOOST_TEST(h.get("host").value_or("") == "api.localhost:" + p);
  BOOST_TEST(h.get("x-forwarded-for").value_or("") == "127.0.0.1");
  BOOST_TEST(h.get("x-forwarded-proto").value_or("") == "http");
  BOOST_TEST(h.get("x-forwarded-host").value_or("") == "api.localhost:" + p);
  BOOST_TEST(h.get("x-forwarded-port").value_or("") == p);
  BOOST_TEST(h.get("x-private-connect-route").value_or("") == "api");
  BOOST_TEST(h.get("x-private-connect-proxy").value_or("") == "1");
  BOOST_TEST(h.has_token("connection", "upgrade"));
  BOOST_TEST(lower(h.get("upgrade").value_or("")) == "websocket");
  BOOST_TEST(h.count("sec-websocket-key") == 1u);
  BOOST_TEST(h.get("sec-websocket-version").value_or("") == "13");
  ws.close(websocket::close_code::normal, ec);
  // The 1 MiB message went up and came back.
  expect_relay_path(env.proxies, io, relay_path::copied, 2 * big.size());
}

BOOST_DATA_TEST_CASE(a_declined_upgrade_is_relayed_as_a_normal_response, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, upgrade_request("api.localhost", std::string("/ws-deny/") + io));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 403);
  BOOST_TEST(r.response->get("x-upstream").value_or("") == "api");
  BOOST_TEST(r.response->body == "no websocket here");
}

BOOST_DATA_TEST_CASE(a_websocket_to_a_refused_upstream_gets_502, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, upgrade_request("dead.localhost", "/socket"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 502);
  const auto v = parse_json(r.response->body);
  BOOST_REQUIRE_MESSAGE(v, r.response->body);
  const boost::json::value expected = {{"error", "Bad Gateway: the service is not responding."},
                                       {"service", "dead"}};
  BOOST_TEST(*v == expected);
}

BOOST_DATA_TEST_CASE(connect_opens_a_byte_tunnel_to_the_route, bdata::make(backends), io) {
  const unsigned port = env.proxies.fresh(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  // The port in the CONNECT line is ignored: the route's is used.
  BOOST_REQUIRE(c.send(connect_request("raw.localhost:443")));
  const auto r = c.read_response(10s, false, /*connect_request=*/true);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.start_line == "HTTP/1.1 200 Connection Established");
  // Binary, every byte value, in 64 KiB rounds so that neither side's buffers can deadlock the echo.
  std::string payload = pattern_body(31, 1u << 20);
  payload.replace(0, 256, std::string([] {
                    std::string all(256, '\0');
                    for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<char>(i);
                    return all;
                  }()));
  std::string echoed;
  for (std::size_t at = 0; at < payload.size(); at += 65536) {
    const std::string piece = payload.substr(at, 65536);
    BOOST_REQUIRE_MESSAGE(c.send(piece), c.error());
    BOOST_REQUIRE_MESSAGE(c.read_at_least(piece.size(), 10s), c.error());
    echoed += c.buffer().substr(0, piece.size());
    c.buffer().erase(0, piece.size());
  }
  BOOST_TEST(echoed.size() == payload.size());
  BOOST_TEST((echoed == payload), "the tunnel changed bytes on the way");
  // The upstream got exactly our bytes: no CONNECT line, no added fields.
  c.close();
  bool found = false;
  for (const std::string& raw : env.raw->raw_connections()) found = found || raw == payload;
  BOOST_TEST(found, "no upstream connection carried exactly the tunnel's bytes");
  expect_relay_path(env.proxies, io, relay_path::spliced, 2 * payload.size());
}

BOOST_DATA_TEST_CASE(connect_carries_http_to_api_without_rewriting_it, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(connect_request("api.localhost:443")));
  const auto r = c.read_response(10s, false, true);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.start_line == "HTTP/1.1 200 Connection Established");
  // Inside the tunnel nothing is parsed: fields the proxy would replace or drop arrive as sent.
  const std::string inner = "GET /tunneled/" + std::string(io) +
                            " HTTP/1.1\r\nHost: somewhere.else\r\nX-Forwarded-For: 6.6.6.6\r\nX_Under: 1\r\n"
                            "Forwarded: for=6.6.6.6\r\nx-private-connect-route: api\r\n\r\n";
  BOOST_REQUIRE(c.send(inner));
  const auto answer = c.read_response();
  BOOST_REQUIRE_MESSAGE(answer, c.error());
  BOOST_TEST(answer->status == 200);
  BOOST_TEST(answer->body == inner);
  BOOST_TEST(!answer->get("x-private-connect-proxy").has_value(), "the proxy touched a tunnelled response");
}

BOOST_DATA_TEST_CASE(curl_through_connect_reaches_api, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  // -p: curl tunnels even plain http through CONNECT api.example.com:80, routed by its first label.
  const auto r =
      run_program({"curl", "-sS", "--max-time", "20", "-p", "-x", "http://127.0.0.1:" + std::to_string(port),
                   std::string("http://api.example.com/curl-tunnel/") + io},
                  30s);
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.err);
  BOOST_TEST(
      r.out.starts_with(std::string("GET /curl-tunnel/") + io + " HTTP/1.1\r\nHost: api.example.com\r\n"),
      r.out);
}

BOOST_DATA_TEST_CASE(connect_to_an_unknown_name_gets_the_404_json, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, connect_request("unknown.localhost:443"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 404);
  const auto v = parse_json(r.response->body);
  BOOST_REQUIRE_MESSAGE(v && v->is_object(), r.response->body);
  BOOST_TEST(member(v->as_object(), "error") == boost::json::value("Service not found"));
  BOOST_TEST(member(v->as_object(), "subdomain") == boost::json::value("unknown"));
}

BOOST_DATA_TEST_CASE(connect_is_never_an_open_forward_proxy, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::size_t accepted_before = env.raw->accepted();
  // A foreign name without a route: 404 like any unknown name.
  const auto foreign = round_trip(port, connect_request("evil.example.com:443"));
  BOOST_REQUIRE_MESSAGE(foreign.response, foreign.error);
  BOOST_TEST(foreign.response->status == 404);
  // Addresses and the bare proxy names are no routes either, even when something listens there.
  const std::string raw_port = std::to_string(env.raw->port());
  for (const std::string& authority :
       std::vector<std::string>{"127.0.0.1:" + raw_port, "localhost:" + raw_port, "[::1]:" + raw_port}) {
    BOOST_TEST_CONTEXT("CONNECT " << authority) {
      raw_client c(port);
      BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
      BOOST_REQUIRE(c.send(connect_request(authority)));
      const auto r = c.read_response(10s, false, true);
      if (r) BOOST_TEST(r->status / 100 != 2, dump(r->head));
    }
  }
  BOOST_TEST(env.raw->accepted() == accepted_before, "the proxy connected to an address it has no route for");
}

BOOST_DATA_TEST_CASE(connect_to_a_refused_upstream_gets_502, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, connect_request("dead.localhost:443"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 502);
  BOOST_TEST(r.response->body.find("Bad Gateway: the service is not responding.") != std::string::npos,
             r.response->body);
}

BOOST_AUTO_TEST_SUITE_END()
