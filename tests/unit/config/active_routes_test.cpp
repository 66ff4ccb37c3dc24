// Unit tests for connect/config/active_routes.hpp: which entries of active-routes.json become routes,
// which are skipped with a warning, and which problems reject the whole file (the caller then keeps its
// last good table). Liveness is a fake in the parse tests; the read tests use this process and a reaped
// child.
#include "connect/config/active_routes.hpp"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "connect/core/log.hpp"
#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using cproxy::control::active_routes_result;
using cproxy::control::parse_active_routes;
namespace route = cproxy::route;

using cproxy::test::temp_dir;

// Pids listed are alive; every question asked is recorded.
struct fake_pids {
  std::set<int> alive;
  std::vector<int> asked;
  std::function<bool(int)> fn() {
    return [this](int pid) {
      asked.push_back(pid);
      return alive.count(pid) > 0;
    };
  }
};

active_routes_result parse(const std::string& text) {
  return parse_active_routes(text, [](int) { return true; });
}

// A pid that surely names no process: a child that has exited and been reaped.
int dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  BOOST_TEST_REQUIRE(child > 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

std::vector<std::string> names(const active_routes_result& r) {
  std::vector<std::string> out;
  for (const route::route& x : r.routes) out.push_back(x.name);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(active_routes)

BOOST_AUTO_TEST_CASE(reads_the_contract_example) {
  fake_pids pids;
  pids.alive = {4242};
  const active_routes_result r = parse_active_routes(
      R"({"version": 1, "routes": [{"serviceName": "api", "localPort": 8080, "pid": 4242, "protocol": "http",
                                    "startedAt": "2024-01-15T10:30:00.000Z"}]})",
      pids.fn());
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST_REQUIRE(r.routes.size() == 1u);
  BOOST_TEST(r.routes[0].name == "api");
  BOOST_TEST(r.routes[0].port == 8080);
  BOOST_TEST(r.routes[0].host == "localhost");
  BOOST_TEST((r.routes[0].from == route::source::reach));
  BOOST_TEST(pids.asked == std::vector<int>{4242}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(dead_pids_drop_out_static_routes_stay) {
  fake_pids pids;
  pids.alive = {10};
  const active_routes_result r = parse_active_routes(R"({"version": 1, "routes": [
      {"serviceName": "alive", "localPort": 1, "pid": 10},
      {"serviceName": "dead", "localPort": 2, "pid": 11},
      {"serviceName": "zero", "localPort": 3, "pid": 0},
      {"serviceName": "none", "localPort": 4},
      {"serviceName": "null", "localPort": 5, "pid": null}]})",
                                                     pids.fn());
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.warnings.empty());  // a dead pid is how a route normally ends, not a problem
  BOOST_TEST(names(r) == (std::vector<std::string>{"alive", "zero", "none", "null"}),
             boost::test_tools::per_element());
  // Static routes never cost a liveness check.
  BOOST_TEST(pids.asked == (std::vector<int>{10, 11}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(names_are_lowercased) {
  const active_routes_result r = parse(R"({"routes": [{"serviceName": "API", "localPort": 1},
                                                     {"serviceName": "My_DB.v2", "localPort": 2}]})");
  BOOST_TEST(names(r) == (std::vector<std::string>{"api", "my_db.v2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(hosts) {
  const active_routes_result r = parse(R"({"routes": [
      {"serviceName": "a", "localPort": 1, "host": "127.0.0.1"},
      {"serviceName": "b", "localPort": 2, "host": "::1"},
      {"serviceName": "c", "localPort": 3, "host": "[::1]"},
      {"serviceName": "d", "localPort": 4, "host": ""},
      {"serviceName": "e", "localPort": 5, "host": null},
      {"serviceName": "f", "localPort": 6, "host": "LOCALHOST"}]})");
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST_REQUIRE(r.routes.size() == 6u);
  const std::vector<std::string> expected{"127.0.0.1", "::1", "::1", "localhost", "localhost", "localhost"};
  for (std::size_t i = 0; i < expected.size(); ++i) BOOST_TEST(r.routes[i].host == expected[i]);
}

BOOST_AUTO_TEST_CASE(a_bad_entry_is_skipped_and_the_rest_apply) {
  const active_routes_result r = parse(R"({"version": 1, "routes": [
      {"serviceName": "good", "localPort": 1},
      3,
      {"localPort": 2},
      {"serviceName": "noport"},
      {"serviceName": "text", "localPort": "80"},
      {"serviceName": "zero", "localPort": 0},
      {"serviceName": "big", "localPort": 65536},
      {"serviceName": "a b", "localPort": 3},
      {"serviceName": 7, "localPort": 3},
      {"serviceName": "neg", "localPort": 4, "pid": -1},
      {"serviceName": "txtpid", "localPort": 4, "pid": "12"},
      {"serviceName": "hugepid", "localPort": 4, "pid": 3000000000},
      {"serviceName": "db", "localPort": 5, "host": "db.internal"},
      {"serviceName": "also-good", "localPort": 6}]})");
  BOOST_TEST(r.error == "");
  BOOST_TEST(names(r) == (std::vector<std::string>{"good", "also-good"}), boost::test_tools::per_element());
  const std::vector<std::string> expected{
      R"(routes[1] skipped: it must be an object, not 3)",
      R"(routes[2] skipped: "serviceName" is missing)",
      R"(routes[3] ("noport") skipped: "localPort" is missing)",
      R"(routes[4] ("text") skipped: "localPort" must be an integer from 1 to 65535, not "80")",
      R"(routes[5] ("zero") skipped: "localPort" must be an integer from 1 to 65535, not 0)",
      R"(routes[6] ("big") skipped: "localPort" must be an integer from 1 to 65535, not 65536)",
      R"(routes[7] ("a b") skipped: "serviceName" must be a name of letters, digits, hyphens and underscores such as "api", not "a b")",
      R"(routes[8] skipped: "serviceName" must be a name of letters, digits, hyphens and underscores such as "api", not 7)",
      R"(routes[9] ("neg") skipped: "pid" must be an integer from 0 to 2147483647, not -1)",
      R"(routes[10] ("txtpid") skipped: "pid" must be an integer from 0 to 2147483647, not "12")",
      R"(routes[11] ("hugepid") skipped: "pid" must be an integer from 0 to 2147483647, not 3000000000)",
      R"(routes[12] ("db") skipped: "host" must be "localhost" or an IP address, not "db.internal")",
  };
  BOOST_TEST(r.warnings == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored) {
  const active_routes_result r = parse(R"({"version": 1, "writer": "reach 2.0", "routes": [
      {"serviceName": "api", "localPort": 8080, "protocol": "tcp", "tunnelId": "x", "extra": {"a": 1}}]})");
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST(names(r) == std::vector<std::string>{"api"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(empty_routes_is_a_valid_empty_table) {
  for (const std::string text : {R"({"version": 1, "routes": []})", R"({"routes": []})"}) {
    const active_routes_result r = parse(text);
    BOOST_TEST(r.error == "", text);
    BOOST_TEST(r.routes.empty());
  }
}

BOOST_AUTO_TEST_CASE(same_name_twice_is_kept_in_order) {
  const active_routes_result r = parse(R"({"routes": [{"serviceName": "api", "localPort": 1},
                                                     {"serviceName": "API", "localPort": 2}]})");
  BOOST_TEST_REQUIRE(r.routes.size() == 2u);
  BOOST_TEST(r.routes[1].port == 2);  // route::table lets this later one win
}

// Issue 10, A7: a rejected name was copied into the warning as it stood, so a name holding a line break
// and a timestamp made a log line of its own.
BOOST_AUTO_TEST_CASE(a_rejected_name_cannot_forge_a_log_line) {
  const active_routes_result r = parse(
      R"({"routes": [{"serviceName": "x\n2026-01-01T00:00:00.000Z forged \"q\" \u001b", "localPort": 1}]})");
  BOOST_TEST_REQUIRE(r.warnings.size() == 1u);
  BOOST_TEST(
      r.warnings[0].starts_with(R"(routes[0] ("x\n2026-01-01T00:00:00.000Z forged \"q\" \x1B") skipped: )"),
      r.warnings[0]);

  // Logged as route_feed logs it, in a child so that this process's log stays where it was.
  temp_dir dir;
  const std::string log_file = dir.path + "/proxy.log";
  const pid_t child = ::fork();
  if (child == 0) {
    if (!cproxy::log::open_file(log_file)) ::_exit(2);
    cproxy::log::warn("active routes file F: ", r.warnings[0]);
    ::_exit(0);
  }
  BOOST_TEST_REQUIRE(child > 0);
  int status = -1;
  ::waitpid(child, &status, 0);
  BOOST_TEST_REQUIRE(status == 0);
  std::ifstream in(log_file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 1, text);
  BOOST_TEST(text.find("\n2026-01-01T00:00:00.000Z forged") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_long_rejected_name_is_cut_in_the_warning) {
  const active_routes_result r =
      parse(R"({"routes": [{"serviceName": ")" + std::string(100'000, '!') + R"(", "localPort": 1}]})");
  BOOST_TEST_REQUIRE(r.warnings.size() == 1u);
  BOOST_TEST(r.warnings[0].size() < 400u);
}

// Issue 10, A8: "dup" and "DUP" in one file, and the later silently won.
BOOST_AUTO_TEST_CASE(a_name_used_twice_is_warned_once_and_the_later_entry_applies) {
  const active_routes_result r = parse(R"({"routes": [{"serviceName": "dup", "localPort": 1},
                                                     {"serviceName": "web", "localPort": 2},
                                                     {"serviceName": "DUP", "localPort": 3},
                                                     {"serviceName": "Dup", "localPort": 4},
                                                     {"serviceName": "web", "localPort": 5},
                                                     {"serviceName": "api", "localPort": 6}]})");
  BOOST_TEST(
      r.warnings ==
          std::vector<std::string>{
              R"(names used by more than one entry (names match case-insensitively; the last entry applies): "dup" in 3 entries (routes[3] applies), "web" in 2 entries (routes[4] applies))"},
      boost::test_tools::per_element());
  const route::table t(r.routes);
  BOOST_TEST_REQUIRE(t.find("dup") != nullptr);
  BOOST_TEST(t.find("dup")->port == 4);
  BOOST_TEST(t.find("web")->port == 5);
}

BOOST_AUTO_TEST_CASE(duplicates_of_a_dead_entry_are_not_warned) {
  fake_pids pids;
  pids.alive = {10};
  const active_routes_result r =
      parse_active_routes(R"({"routes": [{"serviceName": "api", "localPort": 1, "pid": 11},
                                                     {"serviceName": "api", "localPort": 2, "pid": 10}]})",
                          pids.fn());
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST(names(r) == std::vector<std::string>{"api"}, boost::test_tools::per_element());
}

// Issue 10, A8: a 60,000-route file took 6 s to apply. The work is bounded by what is counted (one
// liveness question per entry with a pid, one warning line however many names repeat), never by time.
BOOST_AUTO_TEST_CASE(sixty_thousand_routes_parse_into_one_table) {
  constexpr int count = 60'000;
  std::string text = R"({"version": 1, "routes": [)";
  for (int i = 0; i < count; ++i) {
    text += (i ? "," : "");
    text += R"({"serviceName": "svc)" + std::to_string(i) + R"(", "localPort": )" +
            std::to_string(1 + i % 60'000) +
            (i % 2 ? R"(, "pid": )" + std::to_string(1000 + i % 50) : std::string()) + "}";
  }
  for (int i = 0; i < 20; ++i)
    text += R"(, {"serviceName": "SVC)" + std::to_string(i) + R"(", "localPort": 9})";
  text += "]}";
  fake_pids pids;
  for (int p = 1000; p < 1050; ++p) pids.alive.insert(p);
  const active_routes_result r = parse_active_routes(text, pids.fn());
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.routes.size() == static_cast<std::size_t>(count + 20));
  BOOST_TEST(pids.asked.size() == static_cast<std::size_t>(count / 2));
  BOOST_TEST_REQUIRE(r.warnings.size() == 1u);
  BOOST_TEST(r.warnings[0].ends_with(", and 15 more names"), r.warnings[0]);

  const route::table t(r.routes);
  BOOST_TEST(t.routes().size() == static_cast<std::size_t>(count));
  BOOST_TEST(std::is_sorted(t.routes().begin(), t.routes().end(),
                            [](const route::route& a, const route::route& b) { return a.name < b.name; }));
  BOOST_TEST_REQUIRE(t.find("svc7") != nullptr);
  BOOST_TEST(t.find("svc7")->port == 9);
  BOOST_TEST(t.find("svc59999")->port == 60'000);
}

BOOST_AUTO_TEST_CASE(an_invalid_file_is_an_error_with_no_routes) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "invalid JSON: the file is empty"},
      {"  \n", "invalid JSON: the file is empty"},
      // Half-written, as a tool that truncates and then writes leaves it for a moment.
      {R"({"version": 1, "routes": [{"serviceName": "api", "loc)",
       "invalid JSON at line 1, column 54: incomplete JSON"},
      {"{\"version\": 1,\n \"routes\": [,]}", "invalid JSON at line 2, column 13: syntax error"},
      {"[]", "the top level must be a JSON object, not []"},
      {R"({"version": 1})", R"("routes" is missing)"},
      {R"({"version": 1, "routes": null})", R"("routes" is missing)"},
      {R"({"version": 1, "routes": {"api": 8080}})", R"("routes" must be an array, not {"api":8080})"},
      {R"({"version": 2, "routes": []})", R"(unsupported "version" 2: this build reads version 1)"},
      {R"({"version": "1", "routes": []})", R"(unsupported "version" "1": this build reads version 1)"},
  };
  for (const auto& [text, message] : cases) {
    const active_routes_result r = parse(text);
    BOOST_TEST(r.error == message, text);
    BOOST_TEST(r.routes.empty());
  }
}

BOOST_AUTO_TEST_CASE(process_liveness) {
  using cproxy::control::process_alive;
  BOOST_TEST(process_alive(::getpid()));
  BOOST_TEST(!process_alive(dead_pid()));
  // 0 and negatives address process groups with kill(): never a single live process.
  BOOST_TEST(!process_alive(0));
  BOOST_TEST(!process_alive(-1));
}

BOOST_AUTO_TEST_CASE(reads_a_file_with_real_pids) {
  temp_dir dir;
  const std::string file = dir.write("active-routes.json",
                                     R"({"version": 1, "routes": [
      {"serviceName": "mine", "localPort": 1, "pid": )" +
                                         std::to_string(::getpid()) + R"(},
      {"serviceName": "gone", "localPort": 2, "pid": )" +
                                         std::to_string(dead_pid()) + R"(},
      {"serviceName": "static", "localPort": 3},
      {"serviceName": "bad"}]})");
  const active_routes_result r = cproxy::control::read_active_routes(file);
  BOOST_TEST(r.error == "");
  BOOST_TEST(names(r) == (std::vector<std::string>{"mine", "static"}), boost::test_tools::per_element());
  BOOST_TEST(r.warnings == std::vector<std::string>{"active routes file " + file +
                                                    R"(: routes[3] ("bad") skipped: "localPort" is missing)"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_no_routes_and_no_error) {
  temp_dir dir;
  const active_routes_result r = cproxy::control::read_active_routes(dir.path + "/active-routes.json");
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.routes.empty());
  BOOST_TEST(r.warnings.empty());
}

BOOST_AUTO_TEST_CASE(read_errors_name_the_file) {
  temp_dir dir;
  // A folder where the file should be: opens, cannot be read (also as root).
  active_routes_result r = cproxy::control::read_active_routes(dir.path);
  BOOST_TEST(r.error == "active routes file " + dir.path + ": cannot read: Is a directory");
  const std::string file = dir.write("active-routes.json", R"({"version": 1, "routes": [)");
  r = cproxy::control::read_active_routes(file);
  BOOST_TEST(r.error ==
             "active routes file " + file + ": invalid JSON at line 1, column 27: incomplete JSON");
  BOOST_TEST(r.routes.empty());
}

BOOST_AUTO_TEST_SUITE_END()
