// The request inspector's API (product.md, Inspector): what curl sent to two routes is listed and shown in
// detail as the upstream saw it; filters; server-sent events; replay; HAR with redaction; clear; the
// safety refusals; /_connect/ on a routed name. Both io backends, real upstreams on loopback.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

struct inspector_env {
  scripted_upstream api{"api"};
  scripted_upstream web{"web"};
  closed_port dead_port;
  proxy_pool proxies{proxy_config{
      .routes = {{"api", api.port(), ""}, {"web", web.port(), ""}, {"dead", dead_port.port(), "127.0.0.1"}},
      .extra = {},
      .args = {}}};

  inspector_env() {
    // A fixed answer with a cookie (the default answer echoes the request head, secrets included).
    api.on("/har", [](upstream_conn& c, const recorded_request&) {
      return c.write(simple_response(200, "OK", "har answer", {"Set-Cookie: sid=sekrit-set-cookie"}));
    });
  }
};

std::string host_of(const std::string& name, unsigned port) {
  return name + ".localhost:" + std::to_string(port);
}

// One API call on the own page's host; the JSON body parsed.
struct api_result {
  int status = 0;
  std::string body;
  json::value value;
  std::optional<http_response> response;
};

api_result call(unsigned port, std::string_view method, std::string_view target, std::string_view extra = "",
                std::string_view body = "") {
  const auto r = round_trip(port, request(method, "localhost:" + std::to_string(port), target, extra, body));
  api_result out;
  if (!r.response) {
    BOOST_ERROR("no answer from " << target << ": " << r.error);
    return out;
  }
  out.status = r.response->status;
  out.body = r.response->body;
  out.response = r.response;
  if (auto v = parse_json(out.body)) out.value = *v;
  return out;
}

void clear(unsigned port) {
  const api_result r = call(port, "DELETE", "/_connect/requests", "Content-Type: application/json\r\n");
  BOOST_REQUIRE_EQUAL(r.status, 200);
}

json::array list(unsigned port, std::string_view query = "") {
  const api_result r = call(port, "GET", "/_connect/requests" + std::string(query));
  BOOST_REQUIRE_EQUAL(r.status, 200);
  BOOST_REQUIRE(r.value.is_object());
  return r.value.at("requests").as_array();
}

// The list polled until it holds `n` entries (an exchange is recorded as it ends, which may be just after
// its client read the last byte).
json::array list_at_least(unsigned port, std::size_t n, std::string_view query = "") {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  json::array a;
  for (int i = 0; i < 500; ++i) {
    a = list(port, query);
    if (a.size() >= n || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(10ms);
  }
  return a;
}

json::value detail(unsigned port, std::int64_t id) {
  const api_result r = call(port, "GET", "/_connect/requests/" + std::to_string(id));
  BOOST_REQUIRE_EQUAL(r.status, 200);
  return r.value;
}

std::string curl_url(const std::string& name, unsigned port, const std::string& path) {
  return "http://" + name + ".localhost:" + std::to_string(port) + path;
}

std::vector<std::string> curl_args(const std::string& name, unsigned port) {
  return {"curl", "-sS",       "--max-time", "20",
          "-o",   "/dev/null", "--resolve",  name + ".localhost:" + std::to_string(port) + ":127.0.0.1"};
}

std::string header_of(const json::value& message, std::string_view name) {
  for (const json::value& h : message.at("headers").as_array()) {
    const json::array& pair = h.as_array();
    if (lower(std::string(pair.at(0).as_string())) == name) return std::string(pair.at(1).as_string());
  }
  return {};
}

std::int64_t id_of(const json::value& v) {
  return v.at("id").to_number<std::int64_t>();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(inspector, with_env<inspector_env>, *shared_env<inspector_env>())

BOOST_DATA_TEST_CASE(curl_exchanges_are_listed_and_detailed_as_the_upstream_saw_them, bdata::make(backends),
                     io) {
  const unsigned port = env.proxies.get(io).port();
  clear(port);
  const std::string json_body = R"({"name":"ada","tags":["x","y"]})";
  const std::string upload(1 << 20, 'u');
  const std::string upload_file = env.proxies.get(io).home() + "/upload.bin";
  std::ofstream(upload_file, std::ios::binary) << upload;

  auto args = curl_args("api", port);
  args.push_back(curl_url("api", port, "/get?q=1"));
  BOOST_REQUIRE_EQUAL(run_program(args, 30s).status, 0);
  args = curl_args("web", port);
  for (const std::string a : {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary"})
    args.push_back(a);
  args.push_back(json_body);
  args.push_back(curl_url("web", port, "/post"));
  BOOST_REQUIRE_EQUAL(run_program(args, 30s).status, 0);
  args = curl_args("nosuch", port);
  args.push_back(curl_url("nosuch", port, "/missing"));
  BOOST_REQUIRE_EQUAL(run_program(args, 30s).status, 0);
  args = curl_args("dead", port);
  args.push_back(curl_url("dead", port, "/refused"));
  BOOST_REQUIRE_EQUAL(run_program(args, 30s).status, 0);
  args = curl_args("api", port);
  for (const std::string& a : std::vector<std::string>{"-H", "Expect:", "--data-binary", "@" + upload_file})
    args.push_back(a);
  args.push_back(curl_url("api", port, "/upload"));
  BOOST_REQUIRE_EQUAL(run_program(args, 30s).status, 0);

  const json::array all = list_at_least(port, 5);
  BOOST_REQUIRE_EQUAL(all.size(), 5u);
  // Newest first.
  const std::vector<std::string> paths{"/upload", "/refused", "/missing", "/post", "/get?q=1"};
  const std::vector<std::int64_t> statuses{200, 502, 404, 200, 200};
  const std::vector<std::string> routes{"api", "dead", "", "web", "api"};
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST_CONTEXT("entry " << i) {
      const json::object& e = all[i].as_object();
      BOOST_TEST(e.at("path").as_string() == paths[i]);
      BOOST_TEST(e.at("status").to_number<std::int64_t>() == statuses[i]);
      BOOST_TEST(e.at("route").as_string() == routes[i]);
      BOOST_TEST(e.at("protocol").as_string() == "http/1.1");
      std::vector<std::string> keys;
      for (const auto& kv : e) keys.emplace_back(kv.key());
      const std::vector<std::string> expected{
          "id",     "time",       "route",        "method",        "host",  "path",   "protocol",
          "status", "durationMs", "requestBytes", "responseBytes", "error", "timings"};
      BOOST_TEST(keys == expected, boost::test_tools::per_element());
      BOOST_TEST(std::string(e.at("time").as_string()).ends_with("Z"));
    }
  }
  BOOST_TEST(all[1].at("error").as_string() == "upstream refused");
  BOOST_TEST(all[2].at("error").as_string() == "service not found");
  BOOST_TEST(all[0].at("error").is_null());
  BOOST_TEST(all[0].at("requestBytes").to_number<std::int64_t>() == 1 << 20);

  // The POST: headers as forwarded and the body byte for byte as the upstream got them.
  // The upstreams serve both backends' cases: this case's request is the last one.
  const auto all_seen = env.web.server().requests_for("/post");
  BOOST_REQUIRE(!all_seen.empty());
  const std::vector<recorded_request> seen{all_seen.back()};
  const json::value post = detail(port, id_of(all[3]));
  BOOST_TEST(post.at("request").at("body").as_string() == json_body);
  BOOST_TEST(seen[0].body == json_body);
  BOOST_TEST(post.at("request").at("bodyTruncated").as_bool() == false);
  for (const field& f : seen[0].head.fields)
    BOOST_TEST(header_of(post.at("request"), lower(f.name)) == f.value, f.name);
  BOOST_TEST(post.at("request").at("headers").as_array().size() == seen[0].head.fields.size());
  // The upstream's answer (its own view of the request head) as received.
  BOOST_TEST(post.at("response").at("body").as_string() == seen[0].head.raw);
  BOOST_TEST(header_of(post.at("response"), "x-upstream") == "web");
  const json::object& t = post.at("timings").as_object();
  BOOST_TEST(t.at("connectMs").to_number<double>() >= 0.0);
  BOOST_TEST(t.at("firstByteMs").to_number<double>() >= t.at("connectMs").to_number<double>());
  BOOST_TEST(t.at("totalMs").to_number<double>() >= t.at("firstByteMs").to_number<double>());

  // The upload: over bodyBytes, kept as its size only.
  const json::value up = detail(port, id_of(all[0]));
  BOOST_TEST(up.at("request").at("bodyTruncated").as_bool() == true);
  BOOST_TEST(up.at("request").at("body").as_string() == "");
  BOOST_TEST(env.api.server().requests_for("/upload").back().body_size == upload.size());

  // The proxy's own 502: its JSON as the response, no upstream timings.
  const json::value refused = detail(port, id_of(all[1]));
  BOOST_TEST(refused.at("response").at("body").as_string() ==
             R"({"error":"Bad Gateway: the service is not responding.","service":"dead"})");
  BOOST_TEST(refused.at("timings").at("firstByteMs").is_null());

  const api_result unknown = call(port, "GET", "/_connect/requests/999999999");
  BOOST_TEST(unknown.status == 404);
  BOOST_TEST(unknown.response->get("content-type").value_or("") == "application/json");
}

BOOST_DATA_TEST_CASE(filters_by_route_status_and_limit, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  clear(port);
  for (const std::string& h :
       {host_of("api", port), host_of("web", port), host_of("nosuch", port), host_of("api", port)})
    BOOST_REQUIRE(round_trip(port, request("GET", h, "/filter")).response);
  BOOST_REQUIRE_EQUAL(list_at_least(port, 4).size(), 4u);
  BOOST_TEST(list(port, "?route=api").size() == 2u);
  BOOST_TEST(list(port, "?route=web").size() == 1u);
  BOOST_TEST(list(port, "?status=4xx").size() == 1u);
  BOOST_TEST(list(port, "?status=404").size() == 1u);
  BOOST_TEST(list(port, "?status=2xx").size() == 3u);
  BOOST_TEST(list(port, "?status=502").size() == 0u);
  const json::array one = list(port, "?route=api&limit=1");
  BOOST_REQUIRE_EQUAL(one.size(), 1u);
  BOOST_TEST(one[0].at("id") == list(port, "?route=api")[0].at("id"));
}

BOOST_DATA_TEST_CASE(events_deliver_each_finished_exchange_once, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client events(port);
  BOOST_REQUIRE(events.ok());
  BOOST_REQUIRE(events.send(request("GET", "localhost:" + std::to_string(port), "/_connect/events")));
  BOOST_REQUIRE(events.read_until(": connected\n\n"));
  for (int i = 0; i < 3; ++i)
    BOOST_REQUIRE(
        round_trip(port, request("GET", host_of("api", port), "/event/" + std::to_string(i))).response);
  auto count_events = [&] {
    std::size_t n = 0;
    for (std::size_t at = events.buffer().find("data: "); at != std::string::npos;
         at = events.buffer().find("data: ", at + 1))
      ++n;
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (int i = 0; i < 100 && count_events() < 3 && std::chrono::steady_clock::now() < deadline; ++i)
    events.read_at_least(events.buffer().size() + 1, 200ms);
  // A moment more: nothing is sent twice.
  events.read_at_least(events.buffer().size() + 1, 300ms);
  std::size_t count = 0;
  std::set<std::string> ids;
  for (std::size_t at = events.buffer().find("data: "); at != std::string::npos;
       at = events.buffer().find("data: ", at + 1)) {
    const std::string line = events.buffer().substr(at + 6, events.buffer().find('\n', at) - at - 6);
    const auto v = parse_json(line);
    BOOST_REQUIRE(v);
    BOOST_TEST(std::string(v->at("path").as_string()).starts_with("/event/"));
    ids.insert(json::serialize(v->at("id")));
    ++count;
  }
  BOOST_TEST(count == 3u);
  BOOST_TEST(ids.size() == 3u);
}

BOOST_DATA_TEST_CASE(replay_reaches_the_upstream_with_the_same_request, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  clear(port);
  const std::size_t earlier = env.api.server().requests_for("/replay-me").size();
  const std::string body = R"({"replay":true,"n":42})";
  const auto first = round_trip(port, request("PUT", host_of("api", port), "/replay-me?x=1",
                                              "Content-Type: application/json\r\nX-Custom: one\r\n", body));
  BOOST_REQUIRE(first.response);
  const json::array before = list_at_least(port, 1);
  BOOST_REQUIRE_EQUAL(before.size(), 1u);
  const api_result r =
      call(port, "POST", "/_connect/requests/" + std::to_string(id_of(before[0])) + "/replay",
           "Content-Type: application/json\r\n", "{}");
  BOOST_REQUIRE_EQUAL(r.status, 200);
  BOOST_REQUIRE(r.value.is_object());
  const std::int64_t new_id = id_of(r.value);
  BOOST_TEST(new_id != id_of(before[0]));
  const auto all_seen = env.api.server().requests_for("/replay-me");
  BOOST_REQUIRE_EQUAL(all_seen.size(), earlier + 2);
  const std::vector<recorded_request> seen(all_seen.begin() + static_cast<std::ptrdiff_t>(earlier),
                                           all_seen.end());
  BOOST_TEST(seen[1].head.raw == seen[0].head.raw);
  BOOST_TEST(seen[1].body == seen[0].body);
  BOOST_TEST(seen[1].body == body);
  // The replay is an exchange of its own, in the list.
  const json::array after = list_at_least(port, 2);
  BOOST_REQUIRE_EQUAL(after.size(), 2u);
  BOOST_TEST(id_of(after[0]) == new_id);
  BOOST_TEST(after[0].at("method").as_string() == "PUT");
}

BOOST_DATA_TEST_CASE(a_truncated_body_is_not_replayed, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  clear(port);
  const std::size_t earlier = env.api.server().requests_for("/too-big").size();
  const std::string big(20000, 'b');  // over the default bodyBytes (16384)
  BOOST_REQUIRE(round_trip(port, request("POST", host_of("api", port), "/too-big", "", big)).response);
  const json::array kept = list_at_least(port, 1);
  BOOST_REQUIRE_EQUAL(kept.size(), 1u);
  const api_result r = call(port, "POST", "/_connect/requests/" + std::to_string(id_of(kept[0])) + "/replay",
                            "Content-Type: application/json\r\n");
  BOOST_TEST(r.status == 409);
  BOOST_TEST(
      r.body ==
      R"({"error":"Conflict","message":"The request body was larger than the inspector keeps (bodyBytes), so it cannot be replayed."})");
  BOOST_TEST(env.api.server().requests_for("/too-big").size() == earlier + 1);
}

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): the required members and their types.
void check_har(const json::value& har) {
  const json::object& log = har.at("log").as_object();
  BOOST_TEST(log.at("version").as_string() == "1.2");
  BOOST_TEST(log.at("creator").at("name").is_string());
  BOOST_TEST(log.at("creator").at("version").is_string());
  for (const json::value& e : log.at("entries").as_array()) {
    BOOST_TEST(e.at("startedDateTime").is_string());
    BOOST_TEST(e.at("time").is_number());
    BOOST_TEST(e.at("cache").is_object());
    const json::object& rq = e.at("request").as_object();
    BOOST_TEST(rq.at("method").is_string());
    BOOST_TEST(std::string(rq.at("url").as_string()).starts_with("http://"));
    BOOST_TEST(rq.at("httpVersion").is_string());
    BOOST_TEST(rq.at("cookies").is_array());
    BOOST_TEST(rq.at("queryString").is_array());
    BOOST_TEST(rq.at("headersSize").is_number());
    BOOST_TEST(rq.at("bodySize").is_number());
    for (const json::value& h : rq.at("headers").as_array()) {
      BOOST_TEST(h.at("name").is_string());
      BOOST_TEST(h.at("value").is_string());
    }
    if (rq.contains("postData")) {
      BOOST_TEST(rq.at("postData").at("mimeType").is_string());
      BOOST_TEST(rq.at("postData").at("text").is_string());
    }
    const json::object& rs = e.at("response").as_object();
    BOOST_TEST(rs.at("status").is_number());
    BOOST_TEST(rs.at("statusText").is_string());
    BOOST_TEST(rs.at("httpVersion").is_string());
    BOOST_TEST(rs.at("cookies").is_array());
    BOOST_TEST(rs.at("headers").is_array());
    BOOST_TEST(rs.at("content").at("size").is_number());
    BOOST_TEST(rs.at("content").at("mimeType").is_string());
    BOOST_TEST(rs.at("redirectURL").is_string());
    BOOST_TEST(rs.at("headersSize").is_number());
    BOOST_TEST(rs.at("bodySize").is_number());
    for (const char* phase : {"send", "wait", "receive"}) {
      BOOST_TEST(e.at("timings").at(phase).is_number());
      BOOST_TEST(e.at("timings").at(phase).to_number<double>() >= -1.0);
    }
  }
}

BOOST_DATA_TEST_CASE(har_export_validates_and_redacts, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  clear(port);
  BOOST_REQUIRE(round_trip(port, request("POST", host_of("api", port), "/har?a=1&b=two",
                                         "Authorization: Bearer sekrit-token\r\nCookie: sid=sekrit-cookie\r\n"
                                         "Content-Type: text/plain\r\n",
                                         "hello har"))
                    .response);
  BOOST_REQUIRE_EQUAL(list_at_least(port, 1).size(), 1u);
  const api_result har = call(port, "GET", "/_connect/requests.har");
  BOOST_REQUIRE_EQUAL(har.status, 200);
  BOOST_REQUIRE(har.value.is_object());
  check_har(har.value);
  const json::array& entries = har.value.at("log").at("entries").as_array();
  BOOST_REQUIRE_EQUAL(entries.size(), 1u);
  BOOST_TEST(entries[0].at("request").at("queryString").as_array().size() == 2u);
  BOOST_TEST(entries[0].at("request").at("postData").at("text").as_string() == "hello har");
  BOOST_TEST(har.body.find("sekrit") == std::string::npos);
  BOOST_TEST(har.body.find("[redacted]") != std::string::npos);
  const api_result open = call(port, "GET", "/_connect/requests.har?redact=0");
  check_har(open.value);
  BOOST_TEST(open.body.find("Bearer sekrit-token") != std::string::npos);
  BOOST_TEST(open.body.find("sid=sekrit-cookie") != std::string::npos);
  BOOST_TEST(open.body.find("sid=sekrit-set-cookie") != std::string::npos);
}

BOOST_DATA_TEST_CASE(clear_empties_the_list, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  BOOST_REQUIRE(round_trip(port, request("GET", host_of("api", port), "/before-clear")).response);
  BOOST_REQUIRE(!list_at_least(port, 1).empty());
  clear(port);
  BOOST_TEST(list(port).empty());
}

BOOST_DATA_TEST_CASE(cross_site_and_form_requests_get_403_and_change_nothing, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  clear(port);
  const std::size_t earlier = env.api.server().requests_for("/guarded").size();
  BOOST_REQUIRE(round_trip(port, request("POST", host_of("api", port), "/guarded", "", "x")).response);
  const json::array kept = list_at_least(port, 1);
  BOOST_REQUIRE_EQUAL(kept.size(), 1u);
  const std::string replay = "/_connect/requests/" + std::to_string(id_of(kept[0])) + "/replay";
  struct refused {
    std::string method, target, extra, message;
  };
  const std::vector<refused> cases{
      {"GET", "/_connect/requests", "Origin: http://evil.example\r\n",
       "Requests to /_connect/ from another origin are refused."},
      {"POST", replay, "Origin: http://api.localhost:" + p + "\r\nContent-Type: application/json\r\n",
       "Requests to /_connect/ from another origin are refused."},
      {"GET", "/_connect/requests.har", "Sec-Fetch-Site: cross-site\r\n",
       "Cross-site requests to /_connect/ are refused."},
      {"POST", replay, "Content-Type: application/x-www-form-urlencoded\r\n",
       "POST and DELETE to /_connect/ need Content-Type: application/json."},
      {"DELETE", "/_connect/requests", "Content-Type: text/plain\r\n",
       "POST and DELETE to /_connect/ need Content-Type: application/json."},
      {"DELETE", "/_connect/requests", "",
       "POST and DELETE to /_connect/ need Content-Type: application/json."},
  };
  for (const refused& c : cases) {
    BOOST_TEST_CONTEXT(c.method << " " << c.target << " " << c.extra) {
      const api_result r = call(port, c.method, c.target, c.extra, c.method == "POST" ? "a=1" : "");
      BOOST_TEST(r.status == 403);
      BOOST_TEST(r.body == R"({"error":"Forbidden","message":")" + c.message + "\"}");
    }
  }
  // Nothing changed: no replay reached the upstream, nothing was cleared.
  BOOST_TEST(env.api.server().requests_for("/guarded").size() == earlier + 1);
  BOOST_TEST(list(port).size() == 1u);
  // The own page's origin and same-origin fetches pass.
  BOOST_TEST(call(port, "GET", "/_connect/requests",
                  "Origin: http://localhost:" + p + "\r\nSec-Fetch-Site: same-origin\r\n")
                 .status == 200);
}

BOOST_DATA_TEST_CASE(connect_paths_on_a_routed_name_go_to_that_service, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, request("GET", host_of("api", port), "/_connect/requests"));
  BOOST_REQUIRE(r.response);
  BOOST_TEST(r.response->status == 200);
  BOOST_TEST(r.response->get("x-upstream").value_or("") == "api");
  BOOST_TEST(env.api.server().requests_for("/_connect/requests").size() >= 1u);
}

BOOST_AUTO_TEST_SUITE_END()
