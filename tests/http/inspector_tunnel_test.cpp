// Tunnels in the request inspector: a WebSocket echo and a CONNECT tunnel are one exchange each, whose
// requestBytes / responseBytes count the bytes that went through the tunnel each way (the heads too, on
// the answer's side), exactly where the frames are known. Both io backends (on uring the CONNECT tunnel
// is spliced, so the spliced bytes are counted too).
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "http/client_helpers.hpp"
#include "http/digest.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"
#include "http/websocket_echo.hpp"
#include "support/socket_watchdog.hpp"

using namespace cproxy::http_test;
using cproxy::test::socket_watchdog;
namespace bdata = boost::unit_test::data;
namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

void websocket_echo(upstream_conn& c) {
  const auto req = c.read_request(30s);
  if (req && req->body_complete && req->head.has_token("upgrade", "websocket")) serve_websocket_echo(c, *req);
}

struct tunnel_env {
  upstream_server ws{"ws", websocket_echo};
  std::unique_ptr<upstream_server> raw = make_byte_echo("raw");
  proxy_pool proxies{
      proxy_config{.routes = {{"ws", ws.port(), ""}, {"raw", raw->port(), ""}}, .extra = {}, .args = {}}};
};

json::value call(unsigned port, std::string_view method, const std::string& target) {
  const auto r = round_trip(port, request(method, "localhost:" + std::to_string(port), target,
                                          method == "GET" ? "" : "Content-Type: application/json\r\n"));
  BOOST_REQUIRE(r.response);
  BOOST_REQUIRE_EQUAL(r.response->status, 200);
  const auto v = parse_json(r.response->body);
  BOOST_REQUIRE(v);
  return *v;
}

// The detail of the one exchange on `route`, once the tunnel has ended and it is recorded.
json::value recorded_tunnel(unsigned port, const std::string& route) {
  json::array list;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; i < 1000 && list.empty() && std::chrono::steady_clock::now() < deadline; ++i) {
    list = call(port, "GET", "/_connect/requests?route=" + route).at("requests").as_array();
    if (list.empty()) std::this_thread::sleep_for(10ms);
  }
  BOOST_REQUIRE_EQUAL(list.size(), 1u);
  return call(port, "GET", "/_connect/requests/" + json::serialize(list[0].at("id")));
}

std::uint64_t bytes(const json::value& v, std::string_view name) {
  return v.at(name).to_number<std::uint64_t>();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(inspector_tunnels, with_env<tunnel_env>, *shared_env<tunnel_env>())

BOOST_DATA_TEST_CASE(a_websocket_records_the_bytes_of_its_frames, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  call(port, "DELETE", "/_connect/requests");
  const std::string target = std::string("/inspected-socket/") + io;
  {
    asio::io_context ioc;
    websocket::stream<tcp::socket> ws(ioc);
    ws.next_layer().connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)));
    socket_watchdog watchdog(ws.next_layer().native_handle(), 30s);
    boost::system::error_code ec;
    ws.handshake("ws.localhost:" + p, target, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "handshake: " << ec.message());
    // Ten 100-byte binary messages: each one frame (2 bytes of header, and the client's 4-byte mask).
    std::vector<std::pair<bool, std::string>> messages;
    for (int i = 0; i < 10; ++i) messages.emplace_back(false, pattern_body(static_cast<unsigned>(i), 100));
    check_websocket_echoes(ws, messages);  // ends with a close: 1000 both ways
  }
  const json::value d = recorded_tunnel(port, "ws");
  BOOST_TEST(d.at("protocol").as_string() == "websocket");
  BOOST_TEST(d.at("status").to_number<int>() == 101);
  BOOST_TEST(d.at("path").as_string() == target);
  // Up: 10 masked frames of 2 + 4 + 100 bytes, and the masked close frame (2 + 4 + the 2-byte code).
  const std::uint64_t up = 10 * (2 + 4 + 100) + 8;
  BOOST_TEST(bytes(d, "requestBytes") == up);
  // Down: the 101 head, 10 frames of 2 + 100 bytes and the close frame (2 + 2).
  const std::uint64_t down = 10 * (2 + 100) + 4;
  BOOST_TEST(bytes(d, "responseBytes") >
             down + std::string("HTTP/1.1 101 Switching Protocols\r\n\r\n").size());
  BOOST_TEST(bytes(d, "responseBytes") < down + 1000);
}

BOOST_DATA_TEST_CASE(a_connect_tunnel_records_its_bytes_each_way, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  call(port, "DELETE", "/_connect/requests");
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send("CONNECT raw.localhost:443 HTTP/1.1\r\nHost: raw.localhost:443\r\n\r\n"));
  const auto established = c.read_response(10s, false, /*connect_request=*/true);
  BOOST_REQUIRE_MESSAGE(established, c.error());
  BOOST_REQUIRE_EQUAL(established->status, 200);
  // 320 KiB each way, echoed in 64 KiB rounds (on uring: spliced).
  const std::string payload = pattern_body(41, 320u << 10);
  for (std::size_t at = 0; at < payload.size(); at += 65536) {
    const std::string piece = payload.substr(at, 65536);
    BOOST_REQUIRE_MESSAGE(c.send(piece), c.error());
    BOOST_REQUIRE_MESSAGE(c.read_at_least(piece.size(), 10s), c.error());
    BOOST_REQUIRE((c.buffer().substr(0, piece.size()) == piece));
    c.buffer().erase(0, piece.size());
  }
  c.shutdown_write();
  BOOST_TEST(c.wait_closed(10s));
  const json::value d = recorded_tunnel(port, "raw");
  BOOST_TEST(d.at("protocol").as_string() == "connect");
  BOOST_TEST(bytes(d, "requestBytes") == payload.size());
  BOOST_TEST(bytes(d, "responseBytes") == established->head.raw.size() + payload.size());
}

BOOST_AUTO_TEST_SUITE_END()
