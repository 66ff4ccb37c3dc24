// Unit tests for connect/http/rewrite.hpp: exact bytes of forwarded request heads (X-Forwarded-*, hop-by-hop
// removal, WebSocket upgrades, origin-form) and of client response heads, and follow_trail's loop
// detection. Heads come from parse_request/parse_response over byte arrays.
#include "connect/http/rewrite.hpp"

#include <cstddef>
#include <string>
#include <string_view>

#include "connect/http/head.hpp"
#include "support/unit_test.hpp"

namespace {

namespace http = cproxy::http;

http::request_head request(std::string_view bytes) {
  http::request_head head;
  const http::parse_result r = http::parse_request(bytes, head);
  BOOST_TEST_REQUIRE((r.status == http::parse_status::complete), "the test's request parses: " << r.error);
  return head;
}

http::response_head response(std::string_view bytes, std::string_view method = "GET") {
  http::response_head head;
  const http::parse_result r = http::parse_response(bytes, method, head);
  BOOST_TEST_REQUIRE((r.status == http::parse_status::complete), "the test's response parses: " << r.error);
  return head;
}

http::forward_context context(std::string route = "api") {
  http::forward_context ctx;
  ctx.client_address = "127.0.0.1";
  ctx.proxy_port = 3456;
  ctx.scheme = "http";
  ctx.route_name = std::move(route);
  return ctx;
}

// The head forwarded for `bytes` on route `route`, as the proxy's stage builds it.
std::string forwarded(std::string_view bytes, std::string route = "api") {
  const http::request_head head = request(bytes);
  const http::hop_trail trail = http::follow_trail(head, route);
  return http::forward_request_head(head, context(route), trail);
}

std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// Lowercased, for "is this field anywhere in the head" checks that must not depend on spelling.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_rewrite)

// --- forward_request_head ---

BOOST_AUTO_TEST_CASE(typical_request_exact_bytes) {
  const std::string in =
      "GET /api/items?page=2 HTTP/1.1\r\n"
      "Host: api.localhost:3456\r\n"
      "User-Agent: curl/8.4.0\r\n"
      "Accept: */*\r\n"
      "X-Forwarded-For: 6.6.6.6\r\n"
      "X-Forwarded-Proto: https\r\n"
      "x-forwarded-host: evil.example\r\n"
      "X-Forwarded-Port: 1\r\n"
      "Forwarded: for=6.6.6.6;proto=https\r\n"
      "X_Forwarded_For: 7.7.7.7\r\n"
      "Accept_Encoding: gzip\r\n"
      "Connection: keep-alive, X-Secret\r\n"
      "X-Secret: hop only\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Upgrade: h2c\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: web\r\n"
      "Cookie: session=abc\r\n"
      "\r\n";
  const std::string expected =
      "GET /api/items?page=2 HTTP/1.1\r\n"
      "Host: api.localhost:3456\r\n"
      "User-Agent: curl/8.4.0\r\n"
      "Accept: */*\r\n"
      "Cookie: session=abc\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: api.localhost:3456\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 2\r\n"
      "x-private-connect-route: web,api\r\n"
      "\r\n";
  BOOST_TEST(forwarded(in) == expected);
}

BOOST_AUTO_TEST_CASE(minimal_request_exact_bytes) {
  const std::string expected =
      "GET / HTTP/1.1\r\n"
      "Host: api.localhost\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: api.localhost\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: api\r\n"
      "\r\n";
  BOOST_TEST(forwarded("GET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n") == expected);
}

BOOST_AUTO_TEST_CASE(https_scheme_and_client_address) {
  const http::request_head head = request("GET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n");
  http::forward_context ctx = context();
  ctx.scheme = "https";
  ctx.client_address = "::1";
  ctx.proxy_port = 443;
  const std::string out = http::forward_request_head(head, ctx, http::follow_trail(head, "api"));
  BOOST_TEST(count(out, "\r\nX-Forwarded-Proto: https\r\n") == 1u);
  BOOST_TEST(count(out, "\r\nX-Forwarded-For: ::1\r\n") == 1u);
  BOOST_TEST(count(out, "\r\nX-Forwarded-Port: 443\r\n") == 1u);
}

BOOST_AUTO_TEST_CASE(body_framing_fields_and_expect_pass) {
  const std::string in =
      "POST /upload HTTP/1.1\r\nHost: api.localhost\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n";
  const std::string expected =
      "POST /upload HTTP/1.1\r\n"
      "Host: api.localhost\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Length: 5\r\n"
      "Expect: 100-continue\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: api.localhost\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: api\r\n"
      "\r\n";
  BOOST_TEST(forwarded(in) == expected);
  const std::string chunked =
      forwarded("POST / HTTP/1.1\r\nHost: api.localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
  BOOST_TEST(count(chunked, "\r\nTransfer-Encoding: chunked\r\n") == 1u);
}

BOOST_AUTO_TEST_CASE(connection_cannot_strip_framing) {
  // Connection may name only hop-by-hop fields. Obeying "Connection: content-length" would forward a
  // body the upstream cannot delimit: it would read the body as the next request (smuggling).
  const std::string length = forwarded(
      "POST / HTTP/1.1\r\nHost: api.localhost\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n");
  BOOST_TEST(count(length, "\r\nContent-Length: 5\r\n") == 1u, length);
  const std::string chunked = forwarded(
      "POST / HTTP/1.1\r\nHost: api.localhost\r\nTransfer-Encoding: chunked\r\nConnection: "
      "transfer-encoding\r\n\r\n");
  BOOST_TEST(count(chunked, "\r\nTransfer-Encoding: chunked\r\n") == 1u, chunked);
}

BOOST_AUTO_TEST_CASE(connection_cannot_strip_host) {
  // "Host kept as sent", whatever Connection lists.
  const std::string host = forwarded("GET / HTTP/1.1\r\nHost: api.localhost\r\nConnection: host\r\n\r\n");
  BOOST_TEST(count(host, "\r\nHost: api.localhost\r\n") == 1u, host);
}

BOOST_AUTO_TEST_CASE(connection_listed_fields_are_removed_in_any_case) {
  const std::string out = forwarded(
      "GET / HTTP/1.1\r\nHost: api.localhost\r\nX-A: 1\r\nConnection: x-a\r\nconnection: X-B, close\r\n"
      "x-b: 2\r\nX-C: 3\r\n\r\n");
  const std::string l = lower(out);
  BOOST_TEST(count(l, "\r\nx-a:") == 0u);
  BOOST_TEST(count(l, "\r\nx-b:") == 0u);
  BOOST_TEST(count(l, "\r\nconnection:") == 0u);
  BOOST_TEST(count(out, "\r\nX-C: 3\r\n") == 1u);
}

BOOST_AUTO_TEST_CASE(hop_by_hop_fields_are_removed) {
  const std::string out = forwarded(
      "GET / HTTP/1.1\r\nHost: api.localhost\r\nconnection: keep-alive\r\nKEEP-ALIVE: 300\r\n"
      "Proxy-Connection: close\r\nte: trailers\r\nupgrade: websocket\r\n\r\n");  // no Connection: upgrade
  const std::string l = lower(out);
  for (const char* name : {"connection:", "keep-alive:", "proxy-connection:", "te:", "upgrade:"})
    BOOST_TEST(count(l, std::string("\r\n") + name) == 0u, name);
}

BOOST_AUTO_TEST_CASE(underscore_names_are_dropped) {
  const std::string out = forwarded(
      "GET / HTTP/1.1\r\nHost: api.localhost\r\nX_Forwarded_For: 1.2.3.4\r\nmy_header: 1\r\n_: 2\r\n\r\n");
  BOOST_TEST(count(out, "_") == 0u, out);
}

BOOST_AUTO_TEST_CASE(client_sent_forwarding_fields_are_replaced_once) {
  const std::string out = forwarded(
      "GET / HTTP/1.1\r\nHost: api.localhost\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"
      "X-FORWARDED-PROTO: https\r\nX-Forwarded-Host: evil\r\nx-forwarded-port: 1\r\nForwarded: "
      "for=1.1.1.1\r\n"
      "forwarded: by=x\r\n\r\n");
  const std::string l = lower(out);
  BOOST_TEST(count(l, "\r\nx-forwarded-for:") == 1u);
  BOOST_TEST(count(l, "\r\nx-forwarded-proto:") == 1u);
  BOOST_TEST(count(l, "\r\nx-forwarded-host:") == 1u);
  BOOST_TEST(count(l, "\r\nx-forwarded-port:") == 1u);
  BOOST_TEST(count(l, "\r\nforwarded:") == 0u);
  BOOST_TEST(count(out, "1.1.1.1") == 0u);
  BOOST_TEST(count(out, "evil") == 0u);
}

BOOST_AUTO_TEST_CASE(absolute_form_becomes_origin_form) {
  const std::string expected =
      "GET /p/q?x=1&y=2 HTTP/1.1\r\n"
      "Host: api.localhost:3456\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: api.localhost:3456\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: api\r\n"
      "\r\n";
  BOOST_TEST(
      forwarded("GET http://api.localhost:3456/p/q?x=1&y=2 HTTP/1.1\r\nHost: api.localhost:3456\r\n\r\n") ==
      expected);
}

BOOST_AUTO_TEST_CASE(absolute_form_without_path_becomes_slash) {
  const std::string a = forwarded("GET http://api.example.com HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
  BOOST_TEST(a.substr(0, a.find("\r\n")) == "GET / HTTP/1.1");
  const std::string b = forwarded("GET http://api.example.com?x=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
  BOOST_TEST(b.substr(0, b.find("\r\n")) == "GET /?x=1 HTTP/1.1");
}

BOOST_AUTO_TEST_CASE(http10_absolute_form_without_host_gets_one) {
  const std::string expected =
      "GET /x HTTP/1.0\r\n"
      "Accept: */*\r\n"
      "Host: api.example.com\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: api.example.com\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: api\r\n"
      "\r\n";
  BOOST_TEST(forwarded("GET http://api.example.com/x HTTP/1.0\r\nAccept: */*\r\n\r\n") == expected);
}

BOOST_AUTO_TEST_CASE(websocket_upgrade_keeps_upgrade_and_sends_connection_upgrade) {
  const std::string in =
      "GET /socket HTTP/1.1\r\n"
      "Host: web.localhost:3456\r\n"
      "Upgrade: websocket\r\n"
      "Connection: keep-alive, Upgrade, X-Hop\r\n"
      "X-Hop: 1\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "X-Forwarded-For: 6.6.6.6\r\n"
      "Sec_WebSocket_Key: smuggled\r\n"
      "Keep-Alive: 5\r\n"
      "\r\n";
  const std::string expected =
      "GET /socket HTTP/1.1\r\n"
      "Host: web.localhost:3456\r\n"
      "Upgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Connection: upgrade\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "X-Forwarded-Host: web.localhost:3456\r\n"
      "X-Forwarded-Port: 3456\r\n"
      "x-private-connect-proxy: 1\r\n"
      "x-private-connect-route: web\r\n"
      "\r\n";
  BOOST_TEST(forwarded(in, "web") == expected);
}

// --- follow_trail ---

BOOST_AUTO_TEST_CASE(trail_starts_at_one_hop) {
  const http::hop_trail t =
      http::follow_trail(request("GET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n"), "api");
  BOOST_TEST(t.hops == 1u);
  BOOST_TEST(t.routes == "api");
  BOOST_TEST(!t.loop);
}

BOOST_AUTO_TEST_CASE(legit_chain_passes) {
  // web's dev server calls api.localhost through us.
  const http::hop_trail t =
      http::follow_trail(request("GET / HTTP/1.1\r\nHost: api.localhost\r\nx-private-connect-proxy: 1\r\n"
                                 "x-private-connect-route: web\r\n\r\n"),
                         "api");
  BOOST_TEST(t.hops == 2u);
  BOOST_TEST(t.routes == "web,api");
  BOOST_TEST(!t.loop);
}

BOOST_AUTO_TEST_CASE(route_already_in_the_trail_is_a_loop) {
  const http::hop_trail t =
      http::follow_trail(request("GET / HTTP/1.1\r\nHost: api.localhost\r\nx-private-connect-proxy: 2\r\n"
                                 "x-private-connect-route: api,web\r\n\r\n"),
                         "api");
  BOOST_TEST(t.loop);
  const http::hop_trail upper = http::follow_trail(
      request("GET / HTTP/1.1\r\nHost: api.localhost\r\nX-Private-Connect-Route: web, API\r\n\r\n"), "api");
  BOOST_TEST(upper.loop);
}

BOOST_AUTO_TEST_CASE(a_name_that_only_contains_the_route_is_no_loop) {
  const http::hop_trail t =
      http::follow_trail(request("GET / HTTP/1.1\r\nHost: api.localhost\r\nx-private-connect-proxy: 1\r\n"
                                 "x-private-connect-route: api2,my-api\r\n\r\n"),
                         "api");
  BOOST_TEST(!t.loop);
  BOOST_TEST(t.routes == "api2,my-api,api");
}

BOOST_AUTO_TEST_CASE(hops_reaching_five_is_a_loop) {
  const auto trail_after = [](const std::string& hops) {
    return http::follow_trail(request("GET / HTTP/1.1\r\nHost: a.localhost\r\nx-private-connect-proxy: " +
                                      hops + "\r\nx-private-connect-route: b,c,d\r\n\r\n"),
                              "a");
  };
  const http::hop_trail three = trail_after("3");
  BOOST_TEST(three.hops == 4u);
  BOOST_TEST(!three.loop);
  const http::hop_trail four = trail_after("4");
  BOOST_TEST(four.hops == 5u);
  BOOST_TEST(four.loop);
  const http::hop_trail many = trail_after("40");
  BOOST_TEST(many.hops == http::max_hops);
  BOOST_TEST(many.loop);
}

BOOST_AUTO_TEST_CASE(a_chain_through_the_proxy_is_stopped_where_it_loops) {
  // Each pass: the proxy forwards, the upstream's dev server sends the forwarded head back to us.
  std::string head = "GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n";
  const char* routes[] = {"web", "api", "auth"};
  for (const char* route : routes) {
    const http::request_head parsed = request(head);
    const http::hop_trail t = http::follow_trail(parsed, route);
    BOOST_TEST_REQUIRE(!t.loop, "pass to " << route);
    head = http::forward_request_head(parsed, context(route), t);
  }
  BOOST_TEST(count(head, "\r\nx-private-connect-proxy: 3\r\n") == 1u);
  BOOST_TEST(count(head, "\r\nx-private-connect-route: web,api,auth\r\n") == 1u);
  // auth's server calls web again: that is the loop.
  const http::hop_trail back = http::follow_trail(request(head), "web");
  BOOST_TEST(back.loop);
}

BOOST_AUTO_TEST_CASE(self_loop_is_found_on_the_second_pass) {
  // A dev server whose proxy setting points at itself through us.
  const http::request_head first = request("GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n");
  const http::hop_trail t1 = http::follow_trail(first, "web");
  BOOST_TEST_REQUIRE(!t1.loop);
  const std::string again = http::forward_request_head(first, context("web"), t1);
  BOOST_TEST(http::follow_trail(request(again), "web").loop);
}

// --- client_response_head ---

BOOST_AUTO_TEST_CASE(response_exact_bytes_keep_alive_and_close) {
  const http::response_head head = response(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Length: 5\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: 1\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "x-private-connect-proxy: 1\r\n"
      "Set-Cookie: a=b\r\n"
      "\r\n");
  BOOST_TEST(http::client_response_head(head, true) ==
             "HTTP/1.1 200 OK\r\n"
             "Content-Type: text/plain\r\n"
             "Content-Length: 5\r\n"
             "Set-Cookie: a=b\r\n"
             "x-private-connect-proxy: 1\r\n"
             "Connection: keep-alive\r\n"
             "\r\n");
  BOOST_TEST(http::client_response_head(head, false) ==
             "HTTP/1.1 200 OK\r\n"
             "Content-Type: text/plain\r\n"
             "Content-Length: 5\r\n"
             "Set-Cookie: a=b\r\n"
             "x-private-connect-proxy: 1\r\n"
             "Connection: close\r\n"
             "\r\n");
}

BOOST_AUTO_TEST_CASE(proxy_marker_added_once_even_if_upstream_sent_some) {
  const http::response_head head = response(
      "HTTP/1.1 404 Not Found\r\nX-Private-Connect-Proxy: 3\r\nContent-Length: 0\r\nx-private-connect-proxy: "
      "1\r\n\r\n");
  const std::string out = lower(http::client_response_head(head, true));
  BOOST_TEST(count(out, "x-private-connect-proxy") == 1u);
  BOOST_TEST(count(out, "\r\nx-private-connect-proxy: 1\r\n") == 1u);
  BOOST_TEST(out.substr(0, out.find("\r\n")) == "http/1.1 404 not found");
}

BOOST_AUTO_TEST_CASE(chunked_response_keeps_its_framing) {
  const http::response_head head = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  BOOST_TEST(http::client_response_head(head, true) ==
             "HTTP/1.1 200 OK\r\n"
             "Transfer-Encoding: chunked\r\n"
             "x-private-connect-proxy: 1\r\n"
             "Connection: keep-alive\r\n"
             "\r\n");
}

BOOST_AUTO_TEST_CASE(response_connection_cannot_strip_framing) {
  // The proxy relays the body by the length it parsed; the client must see that same length, or it
  // reads the body as the next response (or waits for a close that a keep-alive connection never sends).
  const http::response_head length =
      response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n");
  const std::string a = http::client_response_head(length, true);
  BOOST_TEST(count(a, "\r\nContent-Length: 5\r\n") == 1u, a);
  const http::response_head chunked =
      response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n");
  const std::string b = http::client_response_head(chunked, true);
  BOOST_TEST(count(b, "\r\nTransfer-Encoding: chunked\r\n") == 1u, b);
}

BOOST_AUTO_TEST_CASE(upgrade_on_a_response_other_than_101_is_removed) {
  // Upgrade is hop-by-hop unless the connection is being upgraded (contract, HTTP behaviour; RFC 9110
  // 7.6.1): an upstream advertising h2c on a 200 speaks for its own connection, not the client's.
  const http::response_head head = response("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n");
  const std::string out = lower(http::client_response_head(head, true));
  BOOST_TEST(count(out, "\r\nupgrade:") == 0u, out);
}

BOOST_AUTO_TEST_CASE(switching_protocols_keeps_connection_and_upgrade) {
  const http::response_head head = response(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n");
  BOOST_TEST(http::client_response_head(head, true) ==
             "HTTP/1.1 101 Switching Protocols\r\n"
             "Upgrade: websocket\r\n"
             "Connection: Upgrade\r\n"
             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
             "x-private-connect-proxy: 1\r\n"
             "\r\n");
  // Whatever the caller's keep-alive says: the connection now belongs to the tunnel.
  BOOST_TEST(http::client_response_head(head, false) == http::client_response_head(head, true));
}

BOOST_AUTO_TEST_CASE(interim_response_gets_no_connection_field) {
  const http::response_head head = response("HTTP/1.1 100 Continue\r\n\r\n");
  BOOST_TEST(http::client_response_head(head, true) ==
             "HTTP/1.1 100 Continue\r\nx-private-connect-proxy: 1\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(http10_response_is_sent_as_http11) {
  const http::response_head head = response("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
  BOOST_TEST(
      http::client_response_head(head, false) ==
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-private-connect-proxy: 1\r\nConnection: close\r\n\r\n");
}

BOOST_AUTO_TEST_SUITE_END()
