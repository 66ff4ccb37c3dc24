// HTTP/2 to clients (product.md, HTTP/2): the plain port with prior knowledge and the HTTPS port with ALPN
// h2, on both io backends. One shared table of routing, error and header cases runs over HTTP/1.1, h2c and
// h2 with curl and must give the same answers; h2load runs 100 concurrent streams on one connection; 8 MiB
// bodies go both ways with hashes; raw frames (h2_frames.hpp) play a stream whose reader never reads,
// malformed streams, a 129th stream, trailers, WebSocket over HTTP/2 (RFC 8441), HPACK bombs and the
// floods, each beside a well-behaved client; nghttp shows response trailers.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/digest.hpp"
#include "http/h2_frames.hpp"
#include "http/proxy_fixture.hpp"
#include "http/proxy_rss.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "http/websocket_echo.hpp"
#include "support/output_text.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
using cproxy::test::count_of;
using cproxy::test::temp_dir;
using cproxy::test::wait_for_text;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

constexpr std::size_t eight_mib = 8u << 20;
constexpr std::uint64_t max_body = 4u << 20;  // the proxies' --max-body; the 8 MiB upload goes to a route
                                              // of a proxy without it

// How many /slow requests the upstream holds at once, and the most it held.
std::atomic<int> slow_in_flight{0};
std::atomic<int> slow_peak{0};

const std::string& download_body() {
  static const std::string body = pattern_body(43, eight_mib + 7);
  return body;
}

// The api upstream: WebSocket echo for upgrades, 8 MiB for /download, the digest and size of the request
// body for /digest, a 3 s pause for /slow, and the head echo otherwise.
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
      if (!c.write(simple_response(200, "OK", sha256_hex(req->body) + " " + std::to_string(req->body_size),
                                   {"X-Upstream: api"})))
        return;
      continue;
    }
    if (req->target.find("/slow") != std::string::npos) {
      const bool counted = req->target.find("/reset") == std::string::npos;  // not the rapid-reset flood's
      const int now = counted ? ++slow_in_flight : 0;
      for (int peak = slow_peak.load(); now > peak && !slow_peak.compare_exchange_weak(peak, now);) {
      }
      for (int w = 0; w < 30 && !c.server().stopping(); ++w) std::this_thread::sleep_for(100ms);
      if (counted) --slow_in_flight;
      if (!answer_with_head(c, *req)) return;
      continue;
    }
    if (req->head.has_token("upgrade", "websocket")) {
      serve_websocket_echo(c, *req);
      return;
    }
    if (!answer_with_head(c, *req)) return;
  }
}

enum class proto { http1, h2c, h2_tls };
const char* name_of(proto p) {
  return p == proto::http1 ? "http/1.1" : p == proto::h2c ? "h2c prior knowledge" : "h2 over TLS";
}
std::ostream& operator<<(std::ostream& out, proto p) {
  return out << name_of(p);
}

struct h2_env {
  upstream_server api{"api", api_upstream, /*record_raw=*/false};
  scripted_upstream rec{"rec"};  // keeps the exact bytes it receives
  closed_port dead;
  proxy_config config(std::vector<std::string> args) {
    return proxy_config{
        .routes = {{"api", api.port(), ""}, {"rec", rec.port(), ""}, {"down", dead.port(), ""}},
        .extra = "",
        .args = std::move(args)};
  }
  proxy_pool proxies{config({"--max-body", std::to_string(max_body)})};
  proxy_pool tls_proxies{config({"--https", "--max-body", std::to_string(max_body)})};
  proxy_pool unlimited{config({"--https"})};
  proxy_pool short_idle{
      proxy_config{.routes = {{"api", api.port(), ""}}, .extra = R"("timeouts": {"idle": 1})", .args = {}}};
};

struct with_h2_env : with_env<h2_env> {
  ~with_h2_env() {
    env.tls_proxies.check_alive();
    env.tls_proxies.show_logs_if_failed();
    env.unlimited.check_alive();
    env.unlimited.show_logs_if_failed();
    env.short_idle.check_alive();
    env.short_idle.show_logs_if_failed();
  }
};

program_result curl(std::vector<std::string> args, int max_time = 30) {
  std::vector<std::string> argv{"curl", "-sS", "--max-time", std::to_string(max_time)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, std::chrono::seconds(max_time + 10));
}

bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// curl's arguments for `target` on `p`, connecting to the proxy on loopback whatever the name.
std::vector<std::string> curl_args(proto p, proxy_instance& proxy, const std::string& target) {
  const std::string port = std::to_string(proxy.port());
  if (p == proto::h2_tls)
    return {"--http2",
            "--cacert",
            proxy.home() + "/certs/ca.crt",
            "--resolve",
            "api.localhost:" + port + ":127.0.0.1",
            "https://api.localhost:" + port + target};
  return {p == proto::h2c ? "--http2-prior-knowledge" : "--http1.1", "http://127.0.0.1:" + port + target};
}

struct answer {
  int status = 0;
  std::string version;  // curl's %{http_version}: "1.1" or "2"
  std::string headers;  // lowercased
  std::string body;
};

// One request with curl; `host` sets the Host (HTTP/2: :authority) when not empty.
answer ask(proto p, proxy_instance& proxy, const std::string& target, const std::string& host,
           std::vector<std::string> more = {}, const temp_dir* dir = nullptr) {
  temp_dir own;
  const temp_dir& d = dir ? *dir : own;
  const std::string head_file = d.file("head");
  std::vector<std::string> args{"-D", head_file, "-w", "\n%{http_code} %{http_version}"};
  if (!host.empty()) args.insert(args.end(), {"-H", "Host: " + host});
  args.insert(args.end(), more.begin(), more.end());
  const std::vector<std::string> where = curl_args(p, proxy, target);
  args.insert(args.end(), where.begin(), where.end());
  const program_result r = curl(args);
  BOOST_TEST_REQUIRE(r.status == 0, name_of(p) << ": curl " << r.status << " " << r.err);
  answer a;
  const auto nl = r.out.rfind('\n');
  a.body = r.out.substr(0, nl);
  std::istringstream tail(r.out.substr(nl + 1));
  tail >> a.status >> a.version;
  std::ifstream in(head_file, std::ios::binary);
  a.headers = lower(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  return a;
}

proxy_instance& proxy_for(h2_env& env, proto p, const std::string& io) {
  return p == proto::h2_tls ? env.tls_proxies.get(io) : env.proxies.get(io);
}

// One row of the shared table: a request and what every protocol must answer.
struct table_case {
  std::string name;
  std::string host;  // "{}" stands for the proxy's port
  std::string target;
  std::vector<std::string> curl;  // more curl arguments
  int status;
  std::string body_has;  // in the body, "{}" the port
};

std::string with_port(std::string s, unsigned port) {
  for (auto at = s.find("{}"); at != std::string::npos; at = s.find("{}"))
    s.replace(at, 2, std::to_string(port));
  return s;
}

const std::vector<table_case>& shared_table() {
  static const std::vector<table_case> cases{
      {"routed", "api.localhost:{}", "/t/routed", {}, 200, "GET /t/routed HTTP/1.1\r\n"},
      {"routed upstream headers", "api.localhost:{}", "/t/fwd", {}, 200, "GET /t/fwd HTTP/1.1\r\n"},
      {"unknown name",
       "nope.localhost:{}",
       "/",
       {},
       404,
       R"("error":"Service not found","subdomain":"nope")"},
      {"foreign host", "example.com", "/", {}, 421, "\"error\""},
      {"own page status",
       "localhost:{}",
       "/",
       {"-H", "Accept: application/json"},
       200,
       R"("protocols":["http/1.1","h2"])"},
      {"refused upstream",
       "down.localhost:{}",
       "/",
       {},
       502,
       R"("error":"Bad Gateway: the service is not responding.","service":"down")"},
      {"loop", "api.localhost:{}", "/t/loop", {"-H", "x-private-connect-route: api"}, 508, "Loop Detected"},
      {"body",
       "api.localhost:{}",
       "/digest",
       {"--data-binary", "hello"},
       200,
       "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5"},
      {"chunked body",
       "api.localhost:{}",
       "/digest",
       {"-H", "Transfer-Encoding: chunked", "--data-binary", "hello"},
       200,
       "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5"},
      {"over --max-body", "api.localhost:{}", "/digest", {"--data-binary", "@BIG"}, 413, "\"error\""},
      {"head of own page", "localhost:{}", "/", {"-I"}, 200, ""},
  };
  return cases;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http2, with_h2_env, *shared_env<h2_env>())

BOOST_DATA_TEST_CASE(one_table_of_cases_answers_alike_over_http1_h2c_and_h2,
                     bdata::make(backends) * bdata::make({proto::http1, proto::h2c, proto::h2_tls}), io, p) {
  proxy_instance& proxy = proxy_for(env, p, io);
  const unsigned port = proxy.port();
  temp_dir dir;
  const std::string big = dir.write("big", std::string(max_body + 1, 'b'));
  for (const table_case& t : shared_table()) {
    BOOST_TEST_CONTEXT(name_of(p) << ", " << t.name) {
      std::vector<std::string> more;
      for (const std::string& a : t.curl) more.push_back(a == "@BIG" ? "@" + big : a);
      const answer a = ask(p, proxy, t.target, with_port(t.host, port), more, &dir);
      BOOST_TEST(a.status == t.status, a.headers << a.body);
      BOOST_TEST(a.version == (p == proto::http1 ? "1.1" : "2"));
      BOOST_TEST(contains(a.body, with_port(t.body_has, port)), a.body);
      BOOST_TEST(contains(a.headers, "x-private-connect-proxy: 1\r\n"), a.headers);
      if (p != proto::http1) {
        // Hop-by-hop fields never reach an HTTP/2 client (RFC 9113 section 8.2.2).
        BOOST_TEST(!contains(a.headers, "\nconnection:"), a.headers);
        BOOST_TEST(!contains(a.headers, "\ntransfer-encoding:"), a.headers);
      }
      if (t.name == "routed upstream headers") {
        const std::string seen = lower(a.body);
        BOOST_TEST(
            contains(seen, std::string("x-forwarded-proto: ") + (p == proto::h2_tls ? "https" : "http")),
            a.body);
        BOOST_TEST(contains(seen, "\r\nhost: api.localhost:" + std::to_string(port) + "\r\n"), a.body);
        BOOST_TEST(contains(seen, "x-forwarded-port: " + std::to_string(port) + "\r\n"), a.body);
        BOOST_TEST(contains(seen, "x-forwarded-for: 127.0.0.1\r\n"), a.body);
        BOOST_TEST(contains(seen, "x-private-connect-proxy: 1\r\n"), a.body);
        BOOST_TEST(contains(seen, "x-private-connect-route: api\r\n"), a.body);
        BOOST_TEST(contains(a.headers, "x-upstream: api\r\n"), a.headers);
      }
    }
  }
}

BOOST_DATA_TEST_CASE(the_access_log_says_h2, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string target = std::string("/t/logged-") + io;
  const answer a = ask(proto::h2c, proxy, target, "api.localhost:" + std::to_string(proxy.port()));
  BOOST_TEST(a.status == 200);
  const std::string line = "GET api.localhost:" + std::to_string(proxy.port()) + target + " 200 ";
  BOOST_TEST(wait_for_text([&] { return proxy.log_text(); }, line, 5s, 50ms), proxy.output());
  const std::string out = proxy.log_text();
  const auto at = out.find(line);
  BOOST_TEST((at != std::string::npos && out.substr(at, out.find('\n', at) - at).ends_with("ms h2")), out);
}

BOOST_DATA_TEST_CASE(h2load_runs_100_concurrent_streams_on_one_connection,
                     bdata::make(backends) * bdata::make({proto::h2c, proto::h2_tls}), io, p) {
  proxy_instance& proxy = proxy_for(env, p, io);
  const std::string port = std::to_string(proxy.port());
  slow_peak = 0;
  // /slow would take 3 s each: only streams that run at once finish 100 of them within the deadline.
  const std::string target = std::string("/slow/") + io + (p == proto::h2_tls ? "/tls" : "/h2c");
  const std::string url = (p == proto::h2_tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + port + target;
  const auto r = run_program(
      {"h2load", "-n", "100", "-c", "1", "-m", "100", "-H", ":authority: api.localhost:" + port, url}, 40s);
  BOOST_TEST(r.status == 0, r.out << r.err);
  BOOST_TEST(contains(r.out, "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed"), r.out);
  BOOST_TEST(contains(r.out, "status codes: 100 2xx"), r.out);
  // All 100 were at the upstream at once, each on a pooled HTTP/1.1 connection of its own.
  BOOST_TEST(slow_peak.load() == 100);
  BOOST_TEST(env.api.requests_for(target).size() == 100u);
}

BOOST_DATA_TEST_CASE(eight_mib_bodies_go_both_ways_with_their_hashes,
                     bdata::make(backends) * bdata::make({proto::h2c, proto::h2_tls}), io, p) {
  proxy_instance& proxy = p == proto::h2_tls ? env.unlimited.get(io) : env.proxies.get(io);
  const std::string host = "api.localhost:" + std::to_string(proxy.port());
  temp_dir dir;
  const std::string upload = pattern_body(7, eight_mib + 3);
  const std::string file = dir.write("upload", upload);
  if (p == proto::h2_tls) {
    const answer up = ask(p, proxy, "/digest", host, {"--data-binary", "@" + file}, &dir);
    BOOST_TEST(up.status == 200);
    BOOST_TEST(up.version == "2");
    BOOST_TEST(up.body == sha256_hex(upload) + " " + std::to_string(upload.size()));
  } else {
    // Over --max-body here: the 413 comes before the upstream sees a byte.
    const answer up = ask(p, proxy, "/digest/limited", host, {"--data-binary", "@" + file}, &dir);
    BOOST_TEST(up.status == 413);
    BOOST_TEST(env.api.requests_for("/digest/limited").empty());
  }
  const std::string out = dir.file("download");
  const answer down = ask(p, proxy, "/download", host, {"-o", out}, &dir);
  BOOST_TEST(down.status == 200);
  BOOST_TEST(down.version == "2");
  std::ifstream in(out, std::ios::binary);
  const std::string got{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  BOOST_TEST(got.size() == download_body().size());
  BOOST_TEST(sha256_hex(got) == sha256_hex(download_body()));
}

// Stream 1 downloads 8 MiB and its reader never gives window back: the proxy may send it 64 KiB only.
// Ten more streams on the same connection must all complete meanwhile; then stream 1 finishes once read.
BOOST_DATA_TEST_CASE(a_stream_whose_reader_stalls_holds_back_no_other_stream, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(
      c.send(std::string(h2::preface) + h2::settings_frame({}) + h2::window_update_frame(0, 1u << 30)));
  BOOST_REQUIRE(
      c.send(h2::frame(h2::headers, h2::end_stream | h2::end_headers, 1,
                       h2::block(h2::get_request(authority, std::string("/download/stall-") + io)))));
  std::size_t stalled_bytes = 0;
  std::string stalled;
  // Until the proxy has sent stream 1 what its window allows.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (stalled_bytes < 65535 && std::chrono::steady_clock::now() < until) {
    const auto f = h2::read_frame(c, 2s);
    if (!f) continue;
    if (f->type == h2::settings && !(f->flags & h2::ack)) c.send(h2::frame(h2::settings, h2::ack, 0, ""));
    if (f->type == h2::data && f->stream == 1) {
      stalled_bytes += f->payload.size();
      stalled += f->payload;
    }
  }
  BOOST_REQUIRE_EQUAL(stalled_bytes, 65535u);
  std::set<std::uint32_t> open;
  for (std::uint32_t id = 3; id <= 21; id += 2) {
    BOOST_REQUIRE(c.send(h2::frame(h2::headers, h2::end_stream | h2::end_headers, id,
                                   h2::block(h2::get_request(authority, "/t/fast-" + std::to_string(id))))));
    open.insert(id);
  }
  while (!open.empty()) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE_MESSAGE(f, "streams still open: " << open.size());
    BOOST_TEST(!(f->stream == 1 && f->type == h2::data), "stream 1 went past its window");
    BOOST_TEST(f->type != h2::rst_stream);
    if ((f->type == h2::data || f->type == h2::headers) && (f->flags & h2::end_stream)) open.erase(f->stream);
  }
  // Now stream 1 reads: the rest arrives, whole.
  BOOST_REQUIRE(c.send(h2::window_update_frame(1, 1u << 30)));
  for (;;) {
    const auto f = h2::read_frame(c, 20s);
    BOOST_REQUIRE_MESSAGE(f, "stream 1 stopped at " << stalled.size());
    if (f->type == h2::data && f->stream == 1) stalled += f->payload;
    if (f->stream == 1 && (f->flags & h2::end_stream)) break;
  }
  BOOST_TEST(stalled.size() == download_body().size());
  BOOST_TEST(sha256_hex(stalled) == sha256_hex(download_body()));
}

// RFC 9113 section 8.2 and 8.3: each of these is reset with PROTOCOL_ERROR, reaches no upstream, and the
// connection serves the next stream.
BOOST_DATA_TEST_CASE(malformed_streams_are_reset_and_never_reach_an_upstream, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  const std::string t = std::string("/t/malformed-") + io;
  const std::vector<std::pair<std::string, h2::fields>> bad{
      {"uppercase name",
       {{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", t}, {"X-Up", "1"}}},
      {"connection header",
       {{":method", "GET"},
        {":scheme", "http"},
        {":authority", authority},
        {":path", t},
        {"connection", "keep-alive"}}},
      {"no :path", {{":method", "GET"}, {":scheme", "http"}, {":authority", authority}}},
      {"te other than trailers",
       {{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", t}, {"te", "gzip"}}},
      {"pseudo after regular",
       {{":method", "GET"}, {":scheme", "http"}, {"x-a", "1"}, {":authority", authority}, {":path", t}}},
  };
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({})));
  std::uint32_t id = 1;
  for (const auto& [why, fields] : bad) {
    BOOST_TEST_CONTEXT(why) {
      BOOST_REQUIRE(c.send(h2::frame(h2::headers, h2::end_stream | h2::end_headers, id, h2::block(fields))));
      std::optional<h2::frame_in> reset;
      for (int i = 0; i < 20 && !reset; ++i) {
        const auto f = h2::read_frame(c, 5s);
        BOOST_REQUIRE_MESSAGE(f, "no answer");
        BOOST_TEST(!(f->type == h2::headers && f->stream == id), "the stream got a response");
        if (f->type == h2::rst_stream && f->stream == id) reset = f;
        BOOST_TEST_REQUIRE(f->type != h2::goaway);
      }
      BOOST_REQUIRE(reset);
      BOOST_TEST(reset->error() == h2::protocol_error);
    }
    id += 2;
  }
  BOOST_REQUIRE(
      c.send(h2::frame(h2::headers, h2::end_stream | h2::end_headers, id,
                       h2::block(h2::get_request(authority, std::string("/t/after-malformed-") + io)))));
  bool answered = false;
  for (int i = 0; i < 50 && !answered; ++i) {
    const auto f = h2::read_frame(c, 5s);
    BOOST_REQUIRE(f);
    answered = f->stream == id && (f->flags & h2::end_stream);
  }
  BOOST_TEST(answered);
  BOOST_TEST(env.api.requests_for(t).empty());
}

// A good client's requests on connections of its own while an attacker works: how many succeeded of how
// many were asked.
std::future<std::pair<int, int>> good_client(proxy_instance& proxy, const std::string& authority, int count) {
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/t/good";
  return std::async(std::launch::async, [url, authority, count] {
    int ok = 0, asked = 0;
    while (asked < count) {
      ++asked;
      const auto r = curl({"--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                           "Host: " + authority, url},
                          10);
      if (r.status == 0 && r.out == "200") ++ok;
    }
    return std::make_pair(ok, asked);
  });
}

// A header list over 64 KiB (literal fields, as a client that misjudged the limit sends them) is answered
// 431, as an HTTP/1.1 head over 64 KiB is, and the connection goes on.
BOOST_DATA_TEST_CASE(a_header_list_over_64_kib_gets_431, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  const std::string target = std::string("/t/big-head-") + io;
  h2::fields big = h2::get_request(authority, target);
  for (int i = 0; i < 70; ++i) big.emplace_back("x-big-" + std::to_string(i), std::string(1000, 'h'));
  const std::string block = h2::block(big);  // about 71 KB: HEADERS, then CONTINUATION frames of 16 KiB
  std::string frames;
  for (std::size_t at = 0; at < block.size(); at += 16384) {
    const bool first = at == 0, last = at + 16384 >= block.size();
    frames +=
        h2::frame(first ? h2::headers : h2::continuation,
                  (first ? h2::end_stream : 0) | (last ? h2::end_headers : 0), 1, block.substr(at, 16384));
  }
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({}) + frames));
  std::optional<h2::frame_in> head;
  bool ended = false;
  for (int i = 0; i < 50 && !ended; ++i) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE_MESSAGE(f, "no end of stream 1");
    BOOST_TEST_REQUIRE(f->type != h2::goaway);
    BOOST_TEST_REQUIRE(f->type != h2::rst_stream);
    if (f->type == h2::headers && f->stream == 1) head = f;
    ended = f->stream == 1 && (f->flags & h2::end_stream);
  }
  BOOST_REQUIRE(head);
  BOOST_TEST(h2::status_of(head->payload) == 431);
  BOOST_TEST(env.api.requests_for(target).empty());
  // The same connection serves the next stream.
  BOOST_REQUIRE(c.send(h2::frame(h2::headers, h2::end_stream | h2::end_headers, 3,
                                 h2::block(h2::get_request(authority, target + "/after")))));
  bool answered = false;
  for (int i = 0; i < 50 && !answered; ++i) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE(f);
    answered = f->stream == 3 && (f->flags & h2::end_stream);
  }
  BOOST_TEST(answered);
}

// An HPACK bomb: a 4000-byte field put in the dynamic table, then referenced 4000 times, 16 MB of
// fields from 8 KB. Past 256 KiB decoded the connection ends with GOAWAY ENHANCE_YOUR_CALM; nothing of
// it reaches an upstream, the proxy's memory stays bounded over ten bombs, and a client on another
// connection is served meanwhile.
BOOST_DATA_TEST_CASE(an_hpack_bomb_ends_its_connection_with_enhance_your_calm, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  const std::string line = "ended: header list over 256 KiB (HPACK bomb)";
  const std::size_t lines_before = count_of(proxy.log_text(), line);
  const std::string target = std::string("/t/bomb-") + io;
  std::string bomb = h2::block(h2::get_request(authority, target)) +
                     h2::literal("x-bomb", std::string(4000, 'b'), /*indexed=*/true);
  for (int i = 0; i < 4000; ++i) bomb += h2::indexed_field(62);
  auto good = good_client(proxy, authority, 10);
  rss_peak rss(proxy.home());
  constexpr int bombs = 10;
  for (int n = 0; n < bombs; ++n) {
    BOOST_TEST_CONTEXT("bomb " << n) {
      raw_client c(proxy.port());
      BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
      BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({}) +
                           h2::frame(h2::headers, h2::end_stream | h2::end_headers, 1, bomb)));
      rss.sample();
      std::optional<h2::frame_in> away;
      for (int i = 0; i < 20 && !away; ++i) {
        const auto f = h2::read_frame(c, 10s);
        BOOST_REQUIRE_MESSAGE(f, "no GOAWAY");
        BOOST_TEST(!(f->stream == 1 && (f->type == h2::headers || f->type == h2::data)),
                   "stream 1 was answered");
        if (f->type == h2::goaway) away = f;
      }
      BOOST_REQUIRE(away);
      BOOST_TEST(away->error() == h2::enhance_your_calm);
      BOOST_TEST(c.wait_closed(10s), "the bomb's connection is still open");
      rss.sample();
    }
  }
  const auto [ok, asked] = good.get();
  BOOST_TEST(ok == asked, ok << " of " << asked << " good requests succeeded");
  rss.sample();
  BOOST_TEST_MESSAGE("HPACK bombs (" << io << "): peak RSS " << rss.peak() << " KiB over " << rss.samples()
                                     << " samples");
  BOOST_TEST(rss.peak() > 0u);
  BOOST_TEST(rss.peak() < flood_rss_limit_kib);
  BOOST_TEST(env.api.requests_for(target).empty());
  BOOST_TEST(wait_for_text([&] { return std::to_string(count_of(proxy.log_text(), line) - lines_before); },
                           std::to_string(bombs), 5s, 50ms),
             proxy.output());
}

// product.md, HTTP/2 limits: 128 concurrent streams. 128 streams whose upstream holds them 3 s, then a
// 129th, all sent before the client acknowledged the proxy's SETTINGS (as a browser's first burst is):
// nghttp2 refuses the 129th with RST_STREAM REFUSED_STREAM (RFC 9113 section 5.1.2; a stream error, so
// the client may retry it), it never reaches the upstream, and the 128 complete.
BOOST_DATA_TEST_CASE(a_129th_concurrent_stream_is_refused_and_the_128_complete, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  const std::string base = std::string("/slow/limit-") + io + "/";
  constexpr std::uint32_t refused_stream = 7;  // RFC 9113 section 7
  slow_peak = 0;
  std::string burst =
      std::string(h2::preface) + h2::settings_frame({}) + h2::window_update_frame(0, 1u << 30);
  std::set<std::uint32_t> open;
  for (std::uint32_t n = 0; n < 128; ++n) {
    const std::uint32_t id = 2 * n + 1;
    burst += h2::frame(h2::headers, h2::end_stream | h2::end_headers, id,
                       h2::block(h2::get_request(authority, base + std::to_string(n))));
    open.insert(id);
  }
  const std::uint32_t extra = 2 * 128 + 1;
  burst += h2::frame(h2::headers, h2::end_stream | h2::end_headers, extra,
                     h2::block(h2::get_request(authority, base + "refused")));
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(burst));
  std::optional<h2::frame_in> refused;
  for (int i = 0; i < 2000 && (!open.empty() || !refused); ++i) {
    const auto f = h2::read_frame(c, 15s);
    BOOST_REQUIRE_MESSAGE(f, open.size()
                                 << " streams still open, 129th " << (refused ? "" : "not ") << "refused");
    if (f->type == h2::settings && !(f->flags & h2::ack))
      BOOST_REQUIRE(c.send(h2::frame(h2::settings, h2::ack, 0, "")));
    BOOST_TEST_REQUIRE(f->type != h2::goaway, "GOAWAY " << f->error());
    if (f->type == h2::rst_stream) {
      BOOST_TEST_REQUIRE(f->stream == extra, "stream " << f->stream << " was reset: " << f->error());
      refused = f;
    }
    if (f->stream == extra)
      BOOST_TEST(f->type == h2::rst_stream, "the 129th got frame type " << int(f->type));
    if ((f->type == h2::data || f->type == h2::headers) && (f->flags & h2::end_stream)) open.erase(f->stream);
  }
  BOOST_REQUIRE(refused);
  BOOST_TEST(refused->error() == refused_stream);
  BOOST_TEST(open.empty());
  // The 128 were at the upstream at once when the 129th came, and it never got there.
  BOOST_TEST(slow_peak.load() == 128);
  BOOST_TEST(env.api.requests_for(base).size() == 128u);
  BOOST_TEST(env.api.requests_for(base + "refused").empty());
}

// Request trailers (a HEADERS block after DATA, with END_STREAM) reach the HTTP/1.1 upstream as the
// trailer section of the chunked body the stream becomes, byte for byte.
BOOST_DATA_TEST_CASE(request_trailers_reach_the_upstream_in_the_chunked_body, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "rec.localhost:" + std::to_string(proxy.port());
  const std::string target = std::string("/trailers-") + io;
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({}) +
                       h2::frame(h2::headers, h2::end_headers, 1,
                                 h2::block({{":method", "POST"},
                                            {":scheme", "http"},
                                            {":authority", authority},
                                            {":path", target},
                                            {"te", "trailers"}})) +
                       h2::frame(h2::data, 0, 1, "hello") + h2::frame(h2::data, 0, 1, " world") +
                       h2::frame(h2::headers, h2::end_stream | h2::end_headers, 1,
                                 h2::block({{"x-checksum", "abc"}, {"x-count", "2"}}))));
  std::optional<h2::frame_in> head;
  bool ended = false;
  for (int i = 0; i < 50 && !ended; ++i) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE_MESSAGE(f, "no end of stream 1");
    BOOST_TEST_REQUIRE(f->type != h2::rst_stream, "reset: " << f->error());
    BOOST_TEST_REQUIRE(f->type != h2::goaway, "GOAWAY: " << f->error());
    if (f->type == h2::headers && f->stream == 1) head = f;
    ended = f->stream == 1 && (f->flags & h2::end_stream);
  }
  BOOST_REQUIRE(head);
  BOOST_TEST(h2::status_of(head->payload) == 200);
  const auto seen = env.rec.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].chunked);
  BOOST_TEST(seen[0].body == "hello world");
  BOOST_TEST(env.rec.server().received("\r\ntransfer-encoding: chunked\r\n"));
  BOOST_TEST(env.rec.server().received(
      "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n"));
}

// A chunked upstream response's trailers go out as a trailing HEADERS frame with END_STREAM (the last
// DATA frame does not end the stream): names lowercased, OWS trimmed, framing fields left out.
BOOST_DATA_TEST_CASE(response_trailers_go_out_as_a_trailing_headers_frame, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string target = std::string("/resp-trailers-") + io;
  env.rec.on(target, [](upstream_conn& up, const recorded_request&) {
    return up.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Count\r\n\r\n"
        "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nx-count:  2 \r\nContent-Length: 99\r\n\r\n");
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port()) + target;
  const auto r = run_program(
      {"nghttp", "-v", "--no-dep", "-H", ":authority: rec.localhost:" + std::to_string(proxy.port()), url},
      20s);
  BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
  const auto at = [&](const std::string& text) { return r.out.find(text); };
  const auto data = at("recv DATA frame <length=5, flags=0x00, stream_id=1>");
  const auto checksum = at("recv (stream_id=1) x-checksum: abc\n");
  const auto count = at("recv (stream_id=1) x-count: 2\n");
  BOOST_TEST_REQUIRE(data != std::string::npos, r.out);
  BOOST_TEST_REQUIRE(checksum != std::string::npos, r.out);
  BOOST_TEST(count != std::string::npos, r.out);
  BOOST_TEST(checksum > data, r.out);
  // nghttp prints a frame's fields before the frame: the first frame line after them is the trailing
  // HEADERS, with END_STREAM | END_HEADERS.
  const auto frame = r.out.find(" frame <", checksum);
  BOOST_TEST_REQUIRE(frame != std::string::npos, r.out);
  const auto line_start = r.out.rfind('\n', frame) + 1;
  const std::string frame_line = r.out.substr(line_start, r.out.find('\n', frame) - line_start);
  BOOST_TEST(frame_line.find("recv HEADERS frame <") != std::string::npos, frame_line);
  BOOST_TEST(frame_line.find("flags=0x05, stream_id=1>") != std::string::npos, frame_line);
  BOOST_TEST(at("content-length: 99") == std::string::npos, r.out);
  BOOST_TEST(at("hello") != std::string::npos, r.out);
}

BOOST_DATA_TEST_CASE(websocket_over_h2_is_an_http11_upgrade_upstream, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({})));
  // The proxy offers RFC 8441 in its SETTINGS.
  bool offers = false;
  for (int i = 0; i < 5 && !offers; ++i) {
    const auto f = h2::read_frame(c, 5s);
    BOOST_REQUIRE(f);
    if (f->type != h2::settings || (f->flags & h2::ack)) continue;
    for (std::size_t at = 0; at + 6 <= f->payload.size(); at += 6)
      if (f->payload[at] == 0 && f->payload[at + 1] == 8 && f->payload.substr(at + 2, 4) == h2::be32(1))
        offers = true;
    BOOST_REQUIRE(c.send(h2::frame(h2::settings, h2::ack, 0, "")));
  }
  BOOST_REQUIRE(offers);
  const std::string target = std::string("/ws/h2-") + io;
  BOOST_REQUIRE(c.send(h2::frame(h2::headers, h2::end_headers, 1,
                                 h2::block({{":method", "CONNECT"},
                                            {":protocol", "websocket"},
                                            {":scheme", "http"},
                                            {":authority", authority},
                                            {":path", target},
                                            {"sec-websocket-version", "13"}}))));
  std::optional<h2::frame_in> head;
  for (int i = 0; i < 20 && !head; ++i) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE(f);
    BOOST_TEST_REQUIRE(f->type != h2::rst_stream);
    if (f->type == h2::headers && f->stream == 1) head = f;
  }
  BOOST_REQUIRE(head);
  BOOST_TEST(h2::status_of(head->payload) == 200);
  BOOST_TEST(!(head->flags & h2::end_stream));
  // A masked text frame "hello" (RFC 6455), echoed unmasked.
  const std::string mask = "\x11\x22\x33\x44";
  std::string frame = "\x81\x85" + mask;
  const std::string text = "hello";
  for (std::size_t i = 0; i < text.size(); ++i) frame += static_cast<char>(text[i] ^ mask[i % 4]);
  BOOST_REQUIRE(c.send(h2::frame(h2::data, 0, 1, frame)));
  std::string echoed;
  for (int i = 0; i < 20 && echoed.size() < 7; ++i) {
    const auto f = h2::read_frame(c, 10s);
    BOOST_REQUIRE(f);
    if (f->type == h2::data && f->stream == 1) echoed += f->payload;
  }
  BOOST_TEST(echoed == std::string("\x81\x05hello"));
  const auto seen = env.api.requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].method == "GET");
  BOOST_TEST(seen[0].version == "HTTP/1.1");
  BOOST_TEST(seen[0].head.has_token("upgrade", "websocket"));
  BOOST_TEST(seen[0].head.has_token("connection", "upgrade"));
  BOOST_TEST(seen[0].get("sec-websocket-key").has_value());
}

// The floods of product.md, HTTP/2. Each attacker's connection ends (GOAWAY, then the close), while a
// well-behaved client on another connection gets all its answers.
enum class flood { ping, settings, rapid_reset, continuation };
const char* name_of(flood f) {
  switch (f) {
    case flood::ping:
      return "PING flood";
    case flood::settings:
      return "SETTINGS flood";
    case flood::rapid_reset:
      return "rapid reset";
    case flood::continuation:
      return "CONTINUATION flood";
  }
  return "";
}
std::ostream& operator<<(std::ostream& out, flood f) {
  return out << name_of(f);
}
// The proxy's log line when the defence ends a connection.
std::string defence_line(flood f) {
  switch (f) {
    case flood::ping:
    case flood::settings:
      return "ended: Flooding was detected in this HTTP/2 session";
    case flood::rapid_reset:
      return "ended: too many streams reset (rapid reset)";
    case flood::continuation:
      return "ended: Too many CONTINUATION frames following a HEADER frame";
  }
  return "";
}

BOOST_DATA_TEST_CASE(floods_end_the_attackers_connection_while_others_are_served,
                     bdata::make(backends) *
                         bdata::make({flood::ping, flood::settings, flood::rapid_reset, flood::continuation}),
                     io, kind) {
  BOOST_TEST_CONTEXT(name_of(kind)) {
    proxy_instance& proxy = env.proxies.get(io);
    const std::string authority = "api.localhost:" + std::to_string(proxy.port());
    const std::size_t slow_before = env.api.requests_for("/slow/reset").size();
    const std::size_t lines_before = count_of(proxy.log_text(), defence_line(kind));
    auto good = std::async(std::launch::async, [&] {
      int ok = 0, asked = 0;
      while (asked < 10) {
        ++asked;
        const auto r =
            curl({"--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                  "Host: " + authority, "http://127.0.0.1:" + std::to_string(proxy.port()) + "/t/good"},
                 10);
        if (r.status == 0 && r.out == "200") ++ok;
      }
      return std::make_pair(ok, asked);
    });
    raw_client c(proxy.port());
    BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
    BOOST_REQUIRE(c.send(std::string(h2::preface) + h2::settings_frame({})));
    std::string burst;
    switch (kind) {
      case flood::ping:
        for (int i = 0; i < 4000; ++i) burst += h2::frame(h2::ping, 0, 0, "12345678");
        break;
      case flood::settings:
        for (int i = 0; i < 4000; ++i) burst += h2::settings_frame({{4, 65535}});
        break;
      case flood::rapid_reset:
        for (std::uint32_t id = 1; id < 2 * 4000; id += 2) {
          burst += h2::frame(h2::headers, h2::end_stream | h2::end_headers, id,
                             h2::block(h2::get_request(authority, "/slow/reset")));
          burst += h2::frame(h2::rst_stream, 0, id, h2::be32(8));  // CANCEL
        }
        break;
      case flood::continuation:
        burst += h2::frame(h2::headers, 0, 1, h2::block(h2::get_request(authority, "/t/cont")));
        for (int i = 0; i < 4000; ++i) burst += h2::frame(h2::continuation, 0, 1, h2::literal("x-c", "v"));
        break;
    }
    // The attacker never reads; the sends may fail once the proxy has closed: that is the point. The
    // proxy's memory is sampled as it goes and after.
    rss_peak rss(proxy.home());
    for (int round = 0; round < 1000 && c.send(burst, 2s); ++round) rss.sample();
    BOOST_TEST(c.wait_closed(20s), "the attacker's connection is still open");
    rss.sample();
    // The defence that ended it says so in one line.
    const auto line_until = std::chrono::steady_clock::now() + 5s;
    while (count_of(proxy.log_text(), defence_line(kind)) == lines_before &&
           std::chrono::steady_clock::now() < line_until)
      std::this_thread::sleep_for(50ms);
    BOOST_TEST(count_of(proxy.log_text(), defence_line(kind)) > lines_before, proxy.output());
    const auto [ok, asked] = good.get();
    BOOST_TEST(ok == asked, ok << " of " << asked << " good requests succeeded");
    BOOST_TEST(asked > 0);
    rss.sample();
    BOOST_TEST_MESSAGE(name_of(kind) << " (" << io << "): peak RSS " << rss.peak() << " KiB over "
                                     << rss.samples() << " samples");
    BOOST_TEST(rss.peak() > 0u);
    BOOST_TEST(rss.peak() < flood_rss_limit_kib);
    if (kind == flood::rapid_reset)
      BOOST_TEST(env.api.requests_for("/slow/reset").size() - slow_before <= 512u,
                 "reset streams still reached the upstream without bound");
    BOOST_TEST(env.api.requests_for("/t/cont").empty());
  }
}

// Idle connections end as in HTTP/1.1 (the idle timeout, 1 s here), with GOAWAY NO_ERROR; so does one
// whose only stream never finishes its header block (a slow HEADERS/CONTINUATION sequence).
BOOST_DATA_TEST_CASE(idle_connections_and_unfinished_headers_get_goaway_after_the_idle_timeout,
                     bdata::make(backends) * bdata::make({false, true}), io, unfinished_headers) {
  proxy_instance& proxy = env.short_idle.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  std::string hello = std::string(h2::preface) + h2::settings_frame({});
  if (unfinished_headers)
    hello += h2::frame(h2::headers, 0, 1, h2::block(h2::get_request(authority, "/t/never")));
  BOOST_REQUIRE(c.send(hello));
  std::optional<h2::frame_in> away;
  for (int i = 0; i < 20 && !away; ++i) {
    const auto f = h2::read_frame(c, 10s);
    if (!f) break;
    if (f->type == h2::goaway) away = f;
  }
  BOOST_REQUIRE_MESSAGE(away, "no GOAWAY");
  BOOST_TEST(away->error() == h2::no_error);
  BOOST_TEST(c.wait_closed(10s));
  BOOST_TEST(env.api.requests_for("/t/never").empty());
}

// A client that opens a window of 0 and never widens it holds a response forever unless something ends
// it: the stream's writes time out like a stalled HTTP/1.1 client's (the idle timeout, 1 s here), the
// stream is reset, and the connection, now idle, gets its GOAWAY.
BOOST_DATA_TEST_CASE(a_zero_window_held_forever_is_bounded_by_the_idle_timeout, bdata::make(backends), io) {
  proxy_instance& proxy = env.short_idle.get(io);
  const std::string authority = "api.localhost:" + std::to_string(proxy.port());
  raw_client c(proxy.port());
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(
      c.send(std::string(h2::preface) + h2::settings_frame({{4, 0}}) +  // INITIAL_WINDOW_SIZE 0
             h2::frame(h2::headers, h2::end_stream | h2::end_headers, 1,
                       h2::block(h2::get_request(authority, "/download/zero-window-" + std::string(io))))));
  bool reset = false, away = false;
  std::size_t data_bytes = 0;
  rss_peak rss(proxy.home());
  for (int i = 0; i < 50 && !(reset && away); ++i) {
    rss.sample();
    const auto f = h2::read_frame(c, 20s);
    if (!f) break;
    if (f->type == h2::settings && !(f->flags & h2::ack)) c.send(h2::frame(h2::settings, h2::ack, 0, ""));
    if (f->type == h2::data) data_bytes += f->payload.size();
    reset = reset || (f->type == h2::rst_stream && f->stream == 1);
    away = away || f->type == h2::goaway;
  }
  BOOST_TEST(data_bytes == 0u, "DATA past a zero window");
  BOOST_TEST(reset, "the stalled stream was not reset");
  BOOST_TEST(away, "the connection did not end");
  BOOST_TEST(c.wait_closed(10s));
  rss.sample();
  BOOST_TEST_MESSAGE("zero window (" << io << "): peak RSS " << rss.peak() << " KiB over " << rss.samples()
                                     << " samples");
  BOOST_TEST(rss.peak() > 0u);
  BOOST_TEST(rss.peak() < flood_rss_limit_kib);
}

BOOST_AUTO_TEST_SUITE_END()
