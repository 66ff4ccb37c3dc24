// HTTPS (product.md, HTTPS): `connect proxy start --https` end to end on both io backends, checked with real
// TLS clients that verify everything: curl --cacert with the proxy's own CA, openssl s_client (the served
// leaf, its SAN and issuer, protocol versions, ALPN), a Beast wss client; routes added while running, the
// redirect of plain HTTP on the TLS port, the status object over TLS, large bodies and keep-alive inside
// TLS, clients that stall a handshake, and a custom --cert/--key pair, good and bad.
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/digest.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "http/websocket_echo.hpp"
#include "support/output_text.hpp"
#include "support/socket_watchdog.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
using cproxy::test::count_of;
using cproxy::test::socket_watchdog;
using cproxy::test::temp_dir;
using cproxy::test::wait_for_text;
namespace bdata = boost::unit_test::data;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t eight_mib = 8u << 20;

// The body of GET /download on the api upstream.
const std::string& download_body() {
  static const std::string body = pattern_body(41, eight_mib + 7);
  return body;
}

// The api upstream: the Beast WebSocket echo of websocket_echo.hpp for upgrades, an 8 MiB body
// for /download, the digest and size of the request body for /digest, and the head echo otherwise.
void api_upstream(upstream_conn& c) {
  for (int i = 0; i < 100000; ++i) {
    const auto req = c.read_request(60s);
    if (!req || !req->body_complete) return;
    if (req->target.find("/download") != std::string::npos) {
      const std::string& body = download_body();
      if (!c.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n",
                   60s) ||
          !c.write(body, 60s))
        return;
      continue;
    }
    if (req->target.find("/digest") != std::string::npos) {
      if (!c.write(simple_response(200, "OK", sha256_hex(req->body) + " " + std::to_string(req->body.size()),
                                   {"X-Upstream: api"})))
        return;
      continue;
    }
    if (!req->head.has_token("upgrade", "websocket")) {
      if (!answer_with_head(c, *req)) return;
      continue;
    }
    serve_websocket_echo(c, *req, 4u << 20);
    return;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// curl, always bounded, errors shown.
program_result curl(std::vector<std::string> args, int max_time = 20) {
  std::vector<std::string> argv{"curl", "-sS", "--max-time", std::to_string(max_time)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, std::chrono::seconds(max_time + 10));
}

std::string resolve(const std::string& name, unsigned port) {
  return name + ":" + std::to_string(port) + ":127.0.0.1";
}

std::string https_url(const std::string& name, unsigned port, const std::string& target) {
  return "https://" + name + ":" + std::to_string(port) + target;
}

std::string ca_file(proxy_instance& proxy) {
  return proxy.home() + "/certs/ca.crt";
}

// openssl s_client with its input at EOF (it would otherwise read the test's stdin).
program_result s_client(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"sh", "-c", "exec openssl s_client \"$@\" </dev/null", "s_client"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, 20s);
}

// The first PEM certificate in s_client -showcerts output: the leaf the server sent.
std::string first_pem(const std::string& text) {
  const std::string begin = "-----BEGIN CERTIFICATE-----";
  const std::string end = "-----END CERTIFICATE-----";
  const auto b = text.find(begin);
  if (b == std::string::npos) return {};
  const auto e = text.find(end, b);
  if (e == std::string::npos) return {};
  return text.substr(b, e + end.size() - b) + "\n";
}

// `openssl x509 -in file -noout ARGS`, stdout; "<error ...>" when it fails.
std::string x509(const std::string& file, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl", "x509", "-in", file, "-noout"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run_program(argv, 20s);
  if (r.status != 0) return "<error " + std::to_string(r.status) + ": " + r.err + ">";
  return r.out;
}

// Without the surrounding blanks and line ends (http_message's trim() keeps line ends).
std::string trim_copy(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

// The entries of `openssl x509 -ext subjectAltName`, as one line ("DNS:a, DNS:b"); the header line dropped.
std::string san_of(const std::string& file) {
  const std::string text = x509(file, {"-ext", "subjectAltName"});
  std::istringstream lines(text);
  std::string line;
  std::string out;
  while (std::getline(lines, line)) {
    if (line.find("Subject Alternative Name") != std::string::npos) continue;
    const std::string t = trim_copy(line);
    if (t.empty()) continue;
    if (!out.empty()) out += ", ";
    out += t;
  }
  return text.starts_with("<error") ? text : out;
}

// "subject=..." / "issuer=..." in RFC 2253 form, the part after the '='.
std::string name_of(const std::string& file, const std::string& which) {
  const std::string text = trim_copy(x509(file, {"-" + which, "-nameopt", "RFC2253"}));
  const auto eq = text.find('=');
  return eq == std::string::npos ? text : trim_copy(text.substr(eq + 1));
}

bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// Waits until the proxy's output (stderr and proxy.log tails) holds `needle`.
bool proxy_output_shows(proxy_instance& proxy, const std::string& needle,
                        std::chrono::milliseconds deadline = 5s) {
  return wait_for_text([&] { return proxy.log_text(); }, needle, deadline, 50ms);
}

// SSL_set_tlsext_host_name, without the macro's C cast.
bool set_sni(SSL* ssl, const char* name) {
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name)) == 1;
}

// Connects the wss client `ws` to the proxy on loopback `port`, set to send SNI `name` and to verify the
// server's certificate for it; the TLS handshake is the caller's.
void connect_verifying(websocket::stream<ssl::stream<tcp::socket>>& ws, const char* name, unsigned port) {
  ws.next_layer().set_verify_callback(ssl::host_name_verification(name));
  BOOST_REQUIRE(set_sni(ws.next_layer().native_handle(), name));
  beast::get_lowest_layer(ws).connect(
      tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)));
}

struct https_env {
  upstream_server api{"api", api_upstream, /*record_raw=*/false};
  scripted_upstream late{"late"};
  proxy_pool proxies{proxy_config{.routes = {{"api", api.port(), ""}}, .extra = "", .args = {"--https"}}};
};

// The served leaf for SNI `name`, checked against the proxy's CA, saved as `dir/leaf-NAME.pem`; empty on
// failure (with the reason reported).
std::string served_leaf(proxy_instance& proxy, const std::string& name, const temp_dir& dir) {
  const auto r =
      s_client({"-connect", "127.0.0.1:" + std::to_string(proxy.port()), "-servername", name, "-showcerts",
                "-verify_return_error", "-CAfile", ca_file(proxy), "-verify_hostname", name});
  BOOST_TEST(r.status == 0, "s_client for " << name << ": " << r.status << "\n" << r.out << r.err);
  BOOST_TEST(contains(r.out, "Verify return code: 0 (ok)"), r.out);
  const std::string pem = first_pem(r.out);
  BOOST_TEST(!pem.empty(), "no certificate in the s_client output:\n" << r.out);
  if (pem.empty()) return {};
  return dir.write("leaf-" + name + ".pem", pem);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(https, with_env<https_env>, *shared_env<https_env>())

BOOST_DATA_TEST_CASE(curl_verifies_the_proxy_and_the_upstream_sees_https, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string p = std::to_string(port);
  const std::string target = std::string("/x/") + io;
  const auto r = curl({"--http1.1", "--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port),
                       "-D", "/dev/stderr", https_url("api.localhost", port, target)});
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.status << " " << r.err);
  BOOST_TEST(r.out.starts_with("GET " + target + " HTTP/1.1\r\n"), r.out);
  BOOST_TEST(contains(r.err, "HTTP/1.1 200"), r.err);
  BOOST_TEST(contains(lower(r.err), "x-upstream: api"), r.err);

  const auto seen = env.api.requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  const message_head& h = seen[0].head;
  BOOST_TEST_INFO("upstream got: " << dump(h));
  BOOST_TEST(h.get("x-forwarded-proto").value_or("") == "https");
  BOOST_TEST(h.get("host").value_or("") == "api.localhost:" + p);
  BOOST_TEST(h.get("x-forwarded-host").value_or("") == "api.localhost:" + p);
  BOOST_TEST(h.get("x-forwarded-port").value_or("") == p);
  BOOST_TEST(h.get("x-forwarded-for").value_or("") == "127.0.0.1");
  BOOST_TEST(h.get("x-private-connect-route").value_or("") == "api");
}

BOOST_DATA_TEST_CASE(a_route_added_while_running_verifies_at_once, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string target = std::string("/late/") + io;
  {
    const std::string tmp = proxy.home() + "/active-routes.json.tmp";
    std::ofstream(tmp) << R"({"version":1,"routes":[{"serviceName":"late","localPort":)" << env.late.port()
                       << "}]}";
    std::filesystem::rename(tmp, proxy.home() + "/active-routes.json");
  }
  // Every attempt verifies fully; before the route is in, the answer is the 404 of an unknown name.
  const auto until = std::chrono::steady_clock::now() + 15s;
  program_result r;
  int attempts = 0;
  for (;;) {
    ++attempts;
    r = curl({"--cacert", ca_file(proxy), "--resolve", resolve("late.localhost", port), "-w",
              "\n%{http_code}", https_url("late.localhost", port, target)},
             10);
    BOOST_REQUIRE_MESSAGE(r.status == 0, "attempt " << attempts << ": curl " << r.status << " " << r.err);
    if (r.out.ends_with("\n200") || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST_REQUIRE(r.out.ends_with("\n200"), "the late route never answered: " << r.out);
  BOOST_TEST(r.out.starts_with("GET " + target + " HTTP/1.1\r\n"), r.out);
  const auto seen = env.late.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].head.get("x-forwarded-proto").value_or("") == "https", dump(seen[0].head));
}

BOOST_DATA_TEST_CASE(each_sni_name_gets_its_own_exact_leaf_from_the_ca, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  temp_dir dir("connect-https");
  const std::string ca_subject = name_of(ca_file(proxy), "subject");
  BOOST_TEST_REQUIRE(!ca_subject.empty());
  BOOST_TEST_REQUIRE(!ca_subject.starts_with("<error"), ca_subject);
  for (const std::string name : {"web.localhost", "tenant1.app.localhost"}) {
    BOOST_TEST_CONTEXT("SNI " << name) {
      const std::string leaf = served_leaf(proxy, name, dir);
      if (leaf.empty()) continue;
      const std::string san = san_of(leaf);
      BOOST_TEST(san == "DNS:" + name);
      BOOST_TEST(!contains(san, "*."), "a wildcard in the SAN: " << san);
      // The subject names the same host, if it names one at all.
      const std::string subject = name_of(leaf, "subject");
      BOOST_TEST((subject.empty() || subject == "CN=" + name), subject);
      BOOST_TEST(name_of(leaf, "issuer") == ca_subject);
      const auto verified = run_program({"openssl", "verify", "-CAfile", ca_file(proxy), leaf}, 20s);
      BOOST_TEST(verified.status == 0, verified.out << verified.err);
      BOOST_TEST(contains(verified.out, ": OK"), verified.out);
    }
  }
}

BOOST_DATA_TEST_CASE(tls_1_1_is_refused_1_2_and_1_3_work_with_alpn_http_1_1, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string connect_to = "127.0.0.1:" + std::to_string(proxy.port());
  // SECLEVEL=0 lets this client offer TLS 1.1, so a refusal is the server's (its alert says so).
  const auto old = s_client(
      {"-connect", connect_to, "-servername", "api.localhost", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"});
  BOOST_TEST(old.status != 0, "TLS 1.1 was accepted:\n" << old.out << old.err);
  BOOST_TEST(!contains(old.out + old.err, "no protocols available"),
             "the client refused TLS 1.1 itself, so this case proves nothing:\n"
                 << old.err);
  BOOST_TEST(contains(old.err, "alert protocol version"), "no protocol version alert from the server:\n"
                                                              << old.err);
  BOOST_TEST(proxy_output_shows(proxy, "unsupported protocol"), proxy.output());

  for (const std::string version : {"1_2", "1_3"}) {
    BOOST_TEST_CONTEXT("-tls" << version) {
      const auto r = s_client({"-connect", connect_to, "-servername", "api.localhost", "-tls" + version,
                               "-alpn", "http/1.1", "-verify_return_error", "-CAfile", ca_file(proxy),
                               "-verify_hostname", "api.localhost"});
      std::string dotted = version;
      dotted[1] = '.';
      BOOST_TEST(r.status == 0, r.out << r.err);
      BOOST_TEST(contains(r.out, "New, TLSv" + dotted + ", Cipher is "), r.out);
      BOOST_TEST(contains(r.out, "ALPN protocol: http/1.1"), r.out);
      BOOST_TEST(contains(r.out, "Verify return code: 0 (ok)"), r.out);
    }
  }
  // A client offering both gets h2, the server's first choice (product.md, HTTP/2); one offering neither
  // gets no ALPN.
  const auto h2 = s_client({"-connect", connect_to, "-servername", "api.localhost", "-alpn", "http/1.1,h2"});
  BOOST_TEST(contains(h2.out, "ALPN protocol: h2"), h2.out << h2.err);
  const auto other = s_client({"-connect", connect_to, "-servername", "api.localhost", "-alpn", "spdy/3"});
  BOOST_TEST(contains(other.out, "No ALPN negotiated"), other.out << other.err);
}

BOOST_DATA_TEST_CASE(keep_alive_and_8_mib_bodies_inside_tls, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string base = std::string("/keep/") + io + "/";
  // Three URLs in one curl run: one TLS connection, reused for the second and third.
  const auto r =
      curl({"-v", "--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port), "-w",
            "[%{http_code}:%{num_connects}]", https_url("api.localhost", port, base + "1"),
            https_url("api.localhost", port, base + "2"), https_url("api.localhost", port, base + "3")});
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.status << " " << r.err);
  BOOST_TEST(count_of(r.out, "[200:1]") == 1u, r.out);
  BOOST_TEST(count_of(r.out, "[200:0]") == 2u, r.out);
  BOOST_TEST(count_of(r.err, "Re-using existing connection") == 2u, r.err);
  for (const char* n : {"1", "2", "3"})
    BOOST_TEST(contains(r.out, "GET " + base + n + " HTTP/1.1\r\n"), r.out);

  // 8 MiB down.
  const auto down = curl({"--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port),
                          https_url("api.localhost", port, std::string("/download/") + io)},
                         60);
  BOOST_REQUIRE_MESSAGE(down.status == 0, "curl download: " << down.status << " " << down.err);
  BOOST_TEST(down.out.size() == download_body().size());
  BOOST_TEST(sha256_hex(down.out) == sha256_hex(download_body()));

  // 8 MiB up (curl sends Expect: 100-continue for it: the interim answer crosses TLS too).
  temp_dir dir("connect-https");
  const std::string body = pattern_body(42, eight_mib + 3);
  const std::string file = dir.write("upload.bin", body);
  const auto up = curl({"--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port), "-H",
                        "Content-Type: application/octet-stream", "--data-binary", "@" + file,
                        https_url("api.localhost", port, std::string("/digest/") + io)},
                       60);
  BOOST_REQUIRE_MESSAGE(up.status == 0, "curl upload: " << up.status << " " << up.err);
  BOOST_TEST(up.out == sha256_hex(body) + " " + std::to_string(body.size()));
}

BOOST_DATA_TEST_CASE(a_wss_client_echoes_through_the_proxy, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string p = std::to_string(port);
  const std::string target = std::string("/ws/") + io;
  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(ca_file(proxy));
  ctx.set_verify_mode(ssl::verify_peer);
  websocket::stream<ssl::stream<tcp::socket>> ws(ioc, ctx);
  connect_verifying(ws, "api.localhost", port);
  socket_watchdog watchdog(beast::get_lowest_layer(ws).native_handle(), 30s);
  boost::system::error_code ec;
  ws.next_layer().handshake(ssl::stream_base::client, ec);
  BOOST_REQUIRE_MESSAGE(!ec, "TLS handshake: " << ec.message());
  websocket::response_type handshake;
  ws.read_message_max(4u << 20);
  ws.handshake(handshake, "api.localhost:" + p, target, ec);
  BOOST_REQUIRE_MESSAGE(!ec, "websocket handshake: " << ec.message() << "\n" << handshake);
  BOOST_TEST(handshake.result_int() == 101);
  BOOST_TEST(std::string(handshake["X-Upstream"]) == "api");

  const std::string big = pattern_body(43, 1u << 20);
  std::vector<std::pair<bool, std::string>> messages{{true, "hello over wss"}, {false, big}};
  for (int i = 0; i < 20; ++i) messages.emplace_back(true, "message " + std::to_string(i));
  check_websocket_echoes(ws, messages);

  const auto seen = env.api.requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].head.get("x-forwarded-proto").value_or("") == "https", dump(seen[0].head));
  BOOST_TEST(seen[0].head.get("host").value_or("") == "api.localhost:" + p);

  // The same client refuses a name the proxy's certificate is not for: the verification above is real.
  websocket::stream<ssl::stream<tcp::socket>> wrong(ioc, ctx);
  connect_verifying(wrong, "api.example.com", port);
  socket_watchdog watchdog2(beast::get_lowest_layer(wrong).native_handle(), 30s);
  wrong.next_layer().handshake(ssl::stream_base::client, ec);
  BOOST_TEST(ec.failed(), "a handshake for api.example.com verified");
}

BOOST_DATA_TEST_CASE(plain_http_on_the_tls_port_is_redirected_to_https, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string authority = "api.localhost:" + std::to_string(port);
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("GET", authority, "/a?b=1")));
  const auto r = c.read_response();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST_INFO("response: " << dump(r->head));
  BOOST_TEST(r->head.start_line == "HTTP/1.1 308 Permanent Redirect");
  BOOST_TEST(r->get("location").value_or("") == "https://" + authority + "/a?b=1");
  BOOST_TEST(lower(r->get("connection").value_or("")) == "close");
  BOOST_TEST(c.wait_closed(), "the connection stayed open after the redirect");
  BOOST_TEST(env.api.requests_for("/a?b=1").empty(), "the plain request reached the upstream");

  // An absolute-form target redirects to its path; OPTIONS * to "/"; HTTP/1.0 without Host gets 400.
  const std::pair<std::string, std::string> other_forms[] = {
      {request("GET", authority, "http://" + authority + "/abs?q=1"), "https://" + authority + "/abs?q=1"},
      {request("OPTIONS", authority, "*"), "https://" + authority + "/"},
  };
  for (const auto& [sent, location] : other_forms) {
    raw_client other(port);
    BOOST_REQUIRE(other.send(sent));
    const auto answer = other.read_response();
    BOOST_REQUIRE_MESSAGE(answer, other.error());
    BOOST_TEST(answer->head.start_line == "HTTP/1.1 308 Permanent Redirect", sent);
    BOOST_TEST(answer->get("location").value_or("") == location, sent);
  }
  raw_client no_host(port);
  BOOST_REQUIRE(no_host.send("GET /x HTTP/1.0\r\n\r\n"));
  const auto refused = no_host.read_response();
  BOOST_REQUIRE_MESSAGE(refused, no_host.error());
  BOOST_TEST(refused->head.start_line.starts_with("HTTP/1.1 400 "), refused->head.start_line);

  // The proxy still serves TLS (and, with curl, follows its own redirect).
  const auto after =
      curl({"-L", "--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port), "-w",
            "\n%{http_code} %{num_redirects} %{scheme}", "http://" + authority + "/after-redirect/" + io});
  BOOST_REQUIRE_MESSAGE(after.status == 0, "curl: " << after.status << " " << after.err);
  BOOST_TEST(after.out.ends_with("\n200 1 HTTPS"), after.out);
}

BOOST_DATA_TEST_CASE(the_status_object_over_tls_says_tls_and_https_urls, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const auto r = curl({"--cacert", ca_file(proxy), "-H", "Accept: application/json",
                       "https://localhost:" + std::to_string(port) + "/"});
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.status << " " << r.err);
  const auto v = parse_json(r.out);
  BOOST_REQUIRE_MESSAGE(v && v->is_object(), r.out);
  const boost::json::object& o = v->as_object();
  BOOST_TEST(member(o, "tls") == boost::json::value(true), r.out);
  BOOST_TEST(member(o, "port") == boost::json::value(static_cast<std::int64_t>(port)), r.out);
  const boost::json::value routes = member(o, "routes");
  BOOST_REQUIRE_MESSAGE(routes.is_array(), r.out);
  bool found = false;
  for (const boost::json::value& route : routes.as_array()) {
    if (!route.is_object() || member(route.as_object(), "name") != boost::json::value("api")) continue;
    found = true;
    BOOST_TEST(member(route.as_object(), "url") ==
                   boost::json::value("https://api.localhost:" + std::to_string(port)),
               r.out);
  }
  BOOST_TEST(found, "no api route in " << r.out);
  // By address too: https://127.0.0.1:PORT verifies with the start-up certificate.
  const auto by_ip = curl({"--cacert", ca_file(proxy), "-H", "Accept: application/json", "-o", "/dev/null",
                           "-w", "%{http_code}", "https://127.0.0.1:" + std::to_string(port) + "/"});
  BOOST_TEST(by_ip.status == 0, by_ip.err);
  BOOST_TEST(by_ip.out == "200");
}

BOOST_DATA_TEST_CASE(stalled_handshakes_do_not_stop_other_clients, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  // Connected and silent; a record header of a ClientHello and nothing more; a handshake record that
  // announces 16 KiB and delivers 3 bytes. Several of each, more than the proxy has threads.
  std::vector<raw_client> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.emplace_back(port);
    stalled.emplace_back(port);
    BOOST_REQUIRE(stalled.back().send(std::string("\x16\x03\x01", 3)));
    stalled.emplace_back(port);
    BOOST_REQUIRE(stalled.back().send(std::string("\x16\x03\x01\x40\x00\x01\x00\x3f", 8)));
  }
  for (const raw_client& c : stalled) BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  std::this_thread::sleep_for(200ms);  // the stalled ones are accepted and waiting first
  for (int i = 0; i < 3; ++i) {
    // 5 s: well under the proxy's handshake (10 s) and header (30 s) deadlines that would free a blocked
    // worker.
    const auto r = curl({"--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port), "-w",
                         "\n%{http_code}", https_url("api.localhost", port, std::string("/meanwhile/") + io)},
                        5);
    BOOST_TEST(r.status == 0, "curl while others stall: " << r.status << " " << r.err);
    BOOST_TEST(r.out.ends_with("\n200"), r.out);
  }
  // Plain HTTP too.
  const auto plain = round_trip(port, request("GET", "api.localhost", "/plain-meanwhile"), 5s);
  BOOST_REQUIRE_MESSAGE(plain.response, plain.error);
  BOOST_TEST(plain.response->status == 308);
  stalled.clear();
  const auto r = curl({"--cacert", ca_file(proxy), "--resolve", resolve("api.localhost", port), "-o",
                       "/dev/null", "-w", "%{http_code}", https_url("api.localhost", port, "/after-stall")});
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(r.out == "200");
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// A self-signed pair made by the openssl tool for localhost and api.localhost, and a key of another pair.
struct custom_files {
  temp_dir dir{"connect-https"};
  std::string cert = dir.file("custom.crt");
  std::string key = dir.file("custom.key");
  std::string other_key = dir.file("other.key");
  custom_files() {
    const auto made = run_program(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost/O=https_test custom pair",
         "-addext", "subjectAltName=DNS:localhost,DNS:api.localhost,IP:127.0.0.1"},
        30s);
    if (made.status != 0) throw std::runtime_error("openssl req: " + made.err);
    const auto other = run_program(
        {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other_key},
        30s);
    if (other.status != 0) throw std::runtime_error("openssl genpkey: " + other.err);
  }
};

struct custom_pair_env {
  custom_files files;
  scripted_upstream api{"api"};
  proxy_pool proxies{proxy_config{
      .routes = {{"api", api.port(), ""}}, .extra = "", .args = {"--cert", files.cert, "--key", files.key}}};
};

// `connect proxy start --foreground --port 0 ...` in a fresh home: its exit status and stderr.
program_result start_with(const std::string& io, const std::vector<std::string>& more) {
  temp_dir home("connect-https");
  std::vector<std::string> argv{"env",          "PRIVATECONNECT_HOME=" + home.path,
                                CONNECT_BINARY, "proxy",
                                "start",        "--foreground",
                                "--port",       "0",
                                "--threads",    "1",
                                "--io",         io};
  argv.insert(argv.end(), more.begin(), more.end());
  return run_program(argv, 20s);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(https_custom_pair, with_env<custom_pair_env>, *shared_env<custom_pair_env>())

BOOST_DATA_TEST_CASE(the_custom_pair_is_served_and_verifies, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string target = std::string("/custom/") + io;
  const auto r = curl({"--cacert", env.files.cert, "--resolve", resolve("api.localhost", port),
                       https_url("api.localhost", port, target)});
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.status << " " << r.err);
  BOOST_TEST(r.out.starts_with("GET " + target + " HTTP/1.1\r\n"), r.out);
  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].head.get("x-forwarded-proto").value_or("") == "https", dump(seen[0].head));

  temp_dir dir("connect-https");
  const std::string subject = name_of(env.files.cert, "subject");
  // Whatever the SNI name, the pair is what is served: no CA, no minting.
  for (const std::string name : {"api.localhost", "web.localhost"}) {
    BOOST_TEST_CONTEXT("SNI " << name) {
      const auto s =
          s_client({"-connect", "127.0.0.1:" + std::to_string(port), "-servername", name, "-showcerts"});
      BOOST_TEST(s.status == 0, s.out << s.err);
      const std::string pem = first_pem(s.out);
      BOOST_REQUIRE_MESSAGE(!pem.empty(), s.out);
      const std::string leaf = dir.write("served-" + name + ".pem", pem);
      BOOST_TEST(name_of(leaf, "subject") == subject);
      BOOST_TEST((pem == read_file(env.files.cert)), "the served certificate is not the --cert file's");
    }
  }
  const auto verified =
      s_client({"-connect", "127.0.0.1:" + std::to_string(port), "-servername", "api.localhost",
                "-verify_return_error", "-CAfile", env.files.cert, "-verify_hostname", "api.localhost"});
  BOOST_TEST(verified.status == 0, verified.out << verified.err);
  BOOST_TEST(contains(verified.out, "Verify return code: 0 (ok)"), verified.out);
  BOOST_TEST(!std::filesystem::exists(proxy.home() + "/certs/ca.crt"),
             "a CA was made although a pair was given");
}

BOOST_DATA_TEST_CASE(a_bad_pair_stops_the_start_with_the_file_named, bdata::make(backends), io) {
  temp_dir dir("connect-https");
  const std::string not_pem = dir.write("not-pem.txt", "this is not a certificate\n");
  const std::string missing = dir.file("missing.pem");
  const std::string& cert = env.files.cert;
  const std::string& key = env.files.key;
  const std::string& other = env.files.other_key;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--cert", missing, "--key", key},
       "[x] --cert " + missing + ": cannot read it (No such file or directory)"},
      {{"--cert", cert, "--key", missing},
       "[x] --key " + missing + ": cannot read it (No such file or directory)"},
      {{"--cert", not_pem, "--key", key}, "[x] --cert " + not_pem + ": not a PEM certificate"},
      {{"--cert", cert, "--key", not_pem}, "[x] --key " + not_pem + ": not a PEM private key"},
      // The certificate given as the key: PEM, but no key.
      {{"--cert", cert, "--key", cert}, "[x] --key " + cert + ": not a PEM private key"},
      {{"--cert", cert, "--key", other},
       "[x] --key " + other + ": the key does not match the certificate in --cert " + cert},
  };
  for (const auto& [args, line] : cases) {
    BOOST_TEST_CONTEXT(args[1] << " / " << args[3]) {
      const auto r = start_with(io, args);
      BOOST_TEST(r.status == 1, "exit " << r.status << "\nstdout: " << r.out << "\nstderr: " << r.err);
      BOOST_TEST(r.err == line + "\n");
      BOOST_TEST(!contains(r.out, "running on port"), r.out);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
