// Both ends of the WebSocket echo the http suites run through the proxy (plain and wss): the upstream's
// Beast echo server on an accepted upstream connection, and the client's check of each echoed message.
#pragma once

#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/upstreams.hpp"

namespace cproxy::http_test {

// Accepts the WebSocket upgrade `req` on `c` (answering with X-Upstream: api) and echoes every message,
// text or binary as it came, until the client closes (Beast throws websocket::error::closed then; a
// forwarded upgrade that is not a valid one throws from accept). `read_message_max`: Beast's when unset.
inline void serve_websocket_echo(upstream_conn& c, const recorded_request& req,
                                 std::optional<std::size_t> read_message_max = std::nullopt) {
  namespace beast = boost::beast;
  namespace websocket = beast::websocket;
  using tcp = boost::asio::ip::tcp;
  beast::http::request<beast::http::empty_body> upgrade{beast::http::verb::get, req.target, 11};
  for (const field& f : req.head.fields) upgrade.insert(f.name, f.value);
  boost::asio::io_context ioc;
  tcp::socket s(ioc);
  // A dup, so that the server's stop() (shutdown of c.fd()) also ends a blocked Beast read.
  s.assign(tcp::v4(), ::dup(c.fd()));
  websocket::stream<tcp::socket> ws(std::move(s));
  ws.set_option(
      websocket::stream_base::decorator([](websocket::response_type& res) { res.set("X-Upstream", "api"); }));
  if (read_message_max) ws.read_message_max(*read_message_max);
  ws.accept(upgrade);
  beast::flat_buffer buffer;
  for (int k = 0; k < 100000; ++k) {
    buffer.clear();
    ws.read(buffer);  // throws websocket::error::closed at the end
    ws.text(ws.got_text());
    ws.write(buffer.data());
  }
}

// Sends each (is text, payload) message on the open WebSocket `ws` and requires the same message back
// (same text/binary kind, same bytes), then closes it normally.
template <class Stream>
void check_websocket_echoes(boost::beast::websocket::stream<Stream>& ws,
                            const std::vector<std::pair<bool, std::string>>& messages) {
  namespace beast = boost::beast;
  boost::system::error_code ec;
  for (const auto& [text, payload] : messages) {
    ws.text(text);
    ws.write(boost::asio::buffer(payload), ec);
    BOOST_REQUIRE_MESSAGE(!ec, "write: " << ec.message());
    beast::flat_buffer buffer;
    ws.read(buffer, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "read: " << ec.message());
    BOOST_TEST(ws.got_text() == text);
    const std::string echoed = beast::buffers_to_string(buffer.data());
    BOOST_TEST(echoed.size() == payload.size());
    BOOST_TEST((echoed == payload));
  }
  ws.close(beast::websocket::close_code::normal, ec);
  BOOST_TEST(!ec, "close: " << ec.message());
}

}  // namespace cproxy::http_test
