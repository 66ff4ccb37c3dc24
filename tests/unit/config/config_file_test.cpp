// Unit tests for connect/config/config_file.hpp: config.json checks with their exact texts, the home
// folder, and the shared route rules. Files live in a mkdtemp folder; the real home is never touched.
#include "connect/config/config_file.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using cproxy::control::config_result;
using cproxy::control::parse_config;
using cproxy::control::read_config_file;
namespace route = cproxy::route;

using cproxy::test::temp_dir;

// Sets or unsets one environment variable for the length of a case, then puts it back.
class env_override {
 public:
  explicit env_override(std::string name) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
  }
  ~env_override() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  env_override(const env_override&) = delete;
  env_override& operator=(const env_override&) = delete;

  void set(const std::string& value) const { ::setenv(name_.c_str(), value.c_str(), 1); }
  void unset() const { ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The texts below name this made-up path; parse_config only uses it in messages.
const std::string p = "/cfg/c.json";
const std::string prefix = "config file /cfg/c.json: ";

// The error a text gets in strict mode, checking that there is no value with it.
std::string strict_error(const std::string& text) {
  const config_result r = parse_config(text, p, true);
  BOOST_TEST(!r.value.has_value());
  return r.error;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_file)

BOOST_AUTO_TEST_CASE(reads_every_field) {
  temp_dir dir;
  const std::string file = dir.write("c.json", R"({
    "apiKey": "k-123", "hubUrl": "http://127.0.0.1:9000", "port": 4000, "https": true,
    "bind": "::1", "domains": ["test", ".Dev."], "quiet": true,
    "timeouts": {"header": 30, "connect": 5, "idle": 60, "response": 61, "tunnelIdle": 3600},
    "routes": [{"name": "web", "port": 5173},
               {"name": "API.v2", "port": 8080, "host": "127.0.0.2"},
               {"name": "six", "port": 9000, "host": "[::1]"}]
  })");
  const config_result r = read_config_file(file, true);
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST_REQUIRE(r.value.has_value());
  const cproxy::control::config& c = *r.value;
  BOOST_TEST(*c.api_key == "k-123");
  BOOST_TEST(*c.hub_url == "http://127.0.0.1:9000");
  BOOST_TEST(*c.port == 4000u);
  BOOST_TEST(*c.https == true);
  BOOST_TEST(*c.bind == "::1");
  BOOST_TEST(c.domains == (std::vector<std::string>{"test", "dev"}), boost::test_tools::per_element());
  BOOST_TEST(*c.quiet == true);
  BOOST_TEST(*c.timeouts.header == 30u);
  BOOST_TEST(*c.timeouts.connect == 5u);
  BOOST_TEST(*c.timeouts.idle == 60u);
  BOOST_TEST(*c.timeouts.response == 61u);
  BOOST_TEST(*c.timeouts.tunnel_idle == 3600u);
  BOOST_TEST_REQUIRE(c.routes.size() == 3u);
  BOOST_TEST(c.routes[0].name == "web");
  BOOST_TEST(c.routes[0].host == "localhost");  // the default
  BOOST_TEST(c.routes[0].port == 5173);
  BOOST_TEST((c.routes[0].from == route::source::config));
  BOOST_TEST(c.routes[1].name == "api.v2");  // lowercased
  BOOST_TEST(c.routes[1].host == "127.0.0.2");
  BOOST_TEST(c.routes[1].port == 8080);
  BOOST_TEST((c.routes[1].from == route::source::config));
  BOOST_TEST(c.routes[2].host == "::1");  // unbracketed, as route::upstream_text() expects
}

BOOST_AUTO_TEST_CASE(absent_and_null_keys_stay_unset) {
  for (const std::string text :
       {"{}", R"({"apiKey": null, "port": null, "timeouts": null, "routes": null,
                                          "domains": null, "https": null})",
        R"({"timeouts": {"header": null}, "routes": [{"name": "a", "port": 1, "host": null}]})"}) {
    const config_result r = parse_config(text, p, true);
    BOOST_TEST_REQUIRE(r.value.has_value(), text);
    BOOST_TEST(!r.value->api_key.has_value());
    BOOST_TEST(!r.value->port.has_value());
    BOOST_TEST(!r.value->https.has_value());
    BOOST_TEST(!r.value->timeouts.header.has_value());
    BOOST_TEST(r.value->domains.empty());
  }
  const config_result r = parse_config(R"({"routes": [{"name": "a", "port": 1, "host": null}]})", p, true);
  BOOST_TEST_REQUIRE(r.value->routes.size() == 1u);
  BOOST_TEST(r.value->routes[0].host == "localhost");
}

BOOST_AUTO_TEST_CASE(missing_home_config_is_an_empty_config) {
  temp_dir dir;
  const config_result r = read_config_file(dir.path + "/config.json", false);
  BOOST_TEST(r.error == "");
  BOOST_TEST(r.warnings.empty());
  BOOST_TEST_REQUIRE(r.value.has_value());
  BOOST_TEST(!r.value->api_key.has_value());
  BOOST_TEST(!r.value->hub_url.has_value());
  BOOST_TEST(!r.value->bind.has_value());
  BOOST_TEST(!r.value->port.has_value());
  BOOST_TEST(!r.value->https.has_value());
  BOOST_TEST(!r.value->quiet.has_value());
  BOOST_TEST(!r.value->timeouts.tunnel_idle.has_value());
  BOOST_TEST(r.value->domains.empty());
  BOOST_TEST(r.value->routes.empty());
}

BOOST_AUTO_TEST_CASE(missing_strict_config_is_an_error) {
  temp_dir dir;
  const std::string file = dir.path + "/none.json";
  const config_result r = read_config_file(file, true);
  BOOST_TEST(!r.value.has_value());
  BOOST_TEST(r.error == "config file " + file + ": cannot read: No such file or directory");
}

BOOST_AUTO_TEST_CASE(unreadable_file_is_an_error_in_both_modes) {
  // A folder opens but cannot be read: unlike a permission bit, that holds even when tests run as root.
  temp_dir dir;
  for (const bool strict : {true, false}) {
    const config_result r = read_config_file(dir.path, strict);
    BOOST_TEST(!r.value.has_value());
    BOOST_TEST(r.error == "config file " + dir.path + ": cannot read: Is a directory");
  }
}

BOOST_AUTO_TEST_CASE(unreadable_by_permission) {
  if (::geteuid() == 0) {
    BOOST_TEST_MESSAGE("skipped: root reads files whatever their mode");
    return;
  }
  temp_dir dir;
  const std::string file = dir.write("c.json", "{}");
  ::chmod(file.c_str(), 0);
  const config_result r = read_config_file(file, false);
  BOOST_TEST(r.error == "config file " + file + ": cannot read: Permission denied");
}

BOOST_AUTO_TEST_CASE(invalid_json_names_file_line_and_column) {
  temp_dir dir;
  const std::string file = dir.write("c.json", "{\"port\": 3456,\n  \"https\": tru }");
  for (const bool strict : {true, false}) {
    const config_result r = read_config_file(file, strict);
    BOOST_TEST(!r.value.has_value());
    BOOST_TEST(r.error == "config file " + file + ": invalid JSON at line 2, column 12: syntax error");
  }
  BOOST_TEST(strict_error("{\"port\": 3456,\n") ==
             prefix + "invalid JSON at line 2, column 1: incomplete JSON");
  BOOST_TEST(strict_error("{} {}") == prefix + "invalid JSON at line 1, column 4: extra data");
  BOOST_TEST(strict_error("") == prefix + "invalid JSON: the file is empty");
  BOOST_TEST(strict_error(" \n\t") == prefix + "invalid JSON: the file is empty");
  BOOST_TEST(strict_error("[1,2]") == prefix + "the top level must be a JSON object, not [1,2]");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_errors_when_strict) {
  BOOST_TEST(strict_error(R"({"port": 1, "foo": 2})") == prefix + R"(unknown key "foo")");
  BOOST_TEST(strict_error(R"({"foo": null})") == prefix + R"(unknown key "foo")");
  BOOST_TEST(strict_error(R"({"timeouts": {"connect": 5, "foo": 1}})") ==
             prefix + R"(unknown key "timeouts.foo")");
  BOOST_TEST(strict_error(R"({"routes": [{"name": "a", "port": 1}, {"name": "b", "port": 2, "bar": 3}]})") ==
             prefix + R"(unknown key "routes[1].bar")");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_warnings_when_not_strict) {
  temp_dir dir;
  const std::string file =
      dir.write("config.json", R"({"foo": 1, "port": 4000, "timeouts": {"foo": 2, "idle": 9},
      "routes": [{"name": "a", "port": 1}, {"name": "b", "port": 2, "bar": 3}], "extra": {"x": 1}})");
  const config_result r = read_config_file(file, false);
  BOOST_TEST(r.error == "");
  BOOST_TEST_REQUIRE(r.value.has_value());
  // Everything known is still read.
  BOOST_TEST(*r.value->port == 4000u);
  BOOST_TEST(*r.value->timeouts.idle == 9u);
  BOOST_TEST(r.value->routes.size() == 2u);
  const std::string at = "config file " + file + ": ";
  const std::vector<std::string> expected{at + R"(unknown key "foo")", at + R"(unknown key "timeouts.foo")",
                                          at + R"(unknown key "routes[1].bar")",
                                          at + R"(unknown key "extra")"};
  BOOST_TEST(r.warnings == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wrong_values_name_the_key_and_what_was_expected) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"port": 0})", R"("port" must be an integer from 1 to 65535, not 0)"},
      {R"({"port": 65536})", R"("port" must be an integer from 1 to 65535, not 65536)"},
      {R"({"port": -1})", R"("port" must be an integer from 1 to 65535, not -1)"},
      {R"({"port": "3456"})", R"("port" must be an integer from 1 to 65535, not "3456")"},
      {R"({"port": 3456.5})", R"("port" must be an integer from 1 to 65535, not 3.4565E3)"},
      {R"({"port": true})", R"("port" must be an integer from 1 to 65535, not true)"},
      {R"({"https": "yes"})", R"("https" must be true or false, not "yes")"},
      {R"({"quiet": 1})", R"("quiet" must be true or false, not 1)"},
      {R"({"apiKey": 5})", R"("apiKey" must be a string, not 5)"},
      {R"({"hubUrl": "ftp://hub"})", R"("hubUrl" must be an http:// or https:// URL, not "ftp://hub")"},
      {R"({"hubUrl": "https://"})", R"("hubUrl" must be an http:// or https:// URL, not "https://")"},
      {R"({"hubUrl": 1})", R"("hubUrl" must be an http:// or https:// URL, not 1)"},
      {R"({"bind": "localhost"})",
       R"("bind" must be an IP address such as "127.0.0.1" or "::1", not "localhost")"},
      {R"({"bind": ""})", R"("bind" must be an IP address such as "127.0.0.1" or "::1", not "")"},
      {R"({"domains": "test"})",
       R"("domains" must be an array of domain names such as ["test"], not "test")"},
      {R"({"domains": ["ok", "a b"]})", R"("domains[1]" must be a domain name such as "test", not "a b")"},
      {R"({"domains": ["."]})", R"("domains[0]" must be a domain name such as "test", not ".")"},
      {R"({"domains": [7]})", R"("domains[0]" must be a domain name such as "test", not 7)"},
      {R"({"timeouts": 5})", R"("timeouts" must be an object such as {"connect": 5}, not 5)"},
      {R"({"timeouts": {"header": 0}})",
       R"("timeouts.header" must be a whole number of seconds from 1 to 2147483, not 0)"},
      {R"({"timeouts": {"tunnelIdle": 2147484}})",
       R"("timeouts.tunnelIdle" must be a whole number of seconds from 1 to 2147483, not 2147484)"},
      {R"({"timeouts": {"connect": "5"}})",
       R"("timeouts.connect" must be a whole number of seconds from 1 to 2147483, not "5")"},
      {R"({"routes": {}})",
       R"("routes" must be an array of routes such as [{"name": "web", "port": 5173}], not {})"},
      {R"({"routes": [3]})", R"("routes[0]" must be an object such as {"name": "web", "port": 5173}, not 3)"},
      {R"({"routes": [{"name": "we b", "port": 1}]})",
       R"("routes[0].name" must be a DNS name of letters, digits and hyphens such as "web" or "api.v2", not "we b")"},
      {R"({"routes": [{"name": "", "port": 1}]})",
       R"("routes[0].name" must be a DNS name of letters, digits and hyphens such as "web" or "api.v2", not "")"},
      {R"({"routes": [{"name": "my_db", "port": 1}]})",
       R"("routes[0].name" must be a DNS name of letters, digits and hyphens such as "web" or "api.v2", not "my_db")"},
      {R"({"routes": [{"name": 5, "port": 1}]})",
       R"("routes[0].name" must be a DNS name of letters, digits and hyphens such as "web" or "api.v2", not 5)"},
      {R"({"routes": [{"name": "web", "port": 70000}]})",
       R"("routes[0].port" must be an integer from 1 to 65535, not 70000)"},
      {R"({"routes": [{"name": "web", "port": 1, "host": "example.com"}]})",
       R"("routes[0].host" must be "localhost" or an IP address, not "example.com")"},
      {R"({"routes": [{"name": "web", "port": 1, "host": ""}]})",
       R"("routes[0].host" must be "localhost" or an IP address, not "")"},
      {R"({"routes": [{"name": "web"}]})",
       R"("routes[0].port" is missing: each route needs a "name" and a "port")"},
      {R"({"routes": [{"port": 1}]})",
       R"("routes[0].name" is missing: each route needs a "name" and a "port")"},
      {R"({"routes": [{}]})", R"("routes[0].name" is missing: each route needs a "name" and a "port")"},
      {R"({"routes": [{"name": "Web", "port": 1}, {"name": "x", "port": 2}, {"name": "web", "port": 3}]})",
       R"("routes[2].name" repeats "web" from routes[0])"},
      // Long values are cut so that the line stays readable.
      {R"({"apiKey": ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]})",
       R"("apiKey" must be a string, not ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)"},
  };
  for (const auto& [text, message] : cases) {
    // A bad value is an error in both modes: only unknown keys are forgiven in the home file.
    BOOST_TEST(strict_error(text) == prefix + message);
    const config_result lenient = parse_config(text, p, false);
    BOOST_TEST(!lenient.value.has_value());
    BOOST_TEST(lenient.error == prefix + message);
  }
}

BOOST_AUTO_TEST_CASE(the_first_problem_stops_reading) {
  // Document order decides which one is reported, so fixing one at a time converges.
  BOOST_TEST(strict_error(R"({"port": 0, "foo": 1})") ==
             prefix + R"("port" must be an integer from 1 to 65535, not 0)");
  BOOST_TEST(strict_error(R"({"foo": 1, "port": 0})") == prefix + R"(unknown key "foo")");
  const config_result r = parse_config(R"({"foo": 1, "port": 0})", p, false);
  BOOST_TEST(r.error == prefix + R"("port" must be an integer from 1 to 65535, not 0)");
  BOOST_TEST(r.warnings.size() == 1u);
}

BOOST_AUTO_TEST_CASE(numbers_written_through_doubles_are_accepted) {
  const config_result r = parse_config(R"({"port": 3456.0, "timeouts": {"idle": 6e1}})", p, true);
  BOOST_TEST_REQUIRE(r.value.has_value());
  BOOST_TEST(*r.value->port == 3456u);
  BOOST_TEST(*r.value->timeouts.idle == 60u);
}

BOOST_AUTO_TEST_CASE(edge_values_are_accepted) {
  const config_result r = parse_config(
      R"({"port": 65535, "hubUrl": "HTTPS://hub.example", "apiKey": "", "bind": "0.0.0.0",
          "timeouts": {"header": 1, "tunnelIdle": 2147483},
          "routes": [{"name": "a", "port": 1, "host": "LocalHost"}]})",
      p, true);
  BOOST_TEST_REQUIRE(r.value.has_value(), r.error);
  BOOST_TEST(*r.value->port == 65535u);
  BOOST_TEST(*r.value->hub_url == "HTTPS://hub.example");
  BOOST_TEST(*r.value->api_key == "");  // kept as written; an empty key means no polling to the caller
  BOOST_TEST(*r.value->timeouts.header == 1u);
  BOOST_TEST(*r.value->timeouts.tunnel_idle == 2147483u);
  BOOST_TEST(r.value->routes[0].host == "localhost");
}

BOOST_AUTO_TEST_CASE(oversized_file_is_refused) {
  temp_dir dir;
  const std::string file = dir.write(
      "c.json", "{\"apiKey\": \"" + std::string(cproxy::control::max_route_file_bytes, 'k') + "\"}");
  const config_result r = read_config_file(file, false);
  BOOST_TEST(r.error == "config file " + file + ": cannot read: File too large");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(route_file_rules)

BOOST_AUTO_TEST_CASE(route_names) {
  using cproxy::control::is_route_name;
  for (const std::string& name :
       std::vector<std::string>{"web", "a", "API", "api.v2", "a-b", "x1.y2.z3", "0", std::string(63, 'a'),
                                std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                    std::string(63, 'c') + "." + std::string(61, 'd')})
    BOOST_TEST(is_route_name(name), name);
  for (const std::string& name :
       std::vector<std::string>{"", ".", "a.", ".a", "a..b", "-a", "a-", "a.-b", "a b", "a_b", "a/b", "a:1",
                                "é", std::string(64, 'a'),
                                std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                    std::string(63, 'c') + "." + std::string(62, 'd')})
    BOOST_TEST(!is_route_name(name), name);
  BOOST_TEST(is_route_name("my_db", true));
  BOOST_TEST(is_route_name("_x.y_", true));
  BOOST_TEST(!is_route_name("a b", true));
}

BOOST_AUTO_TEST_CASE(upstream_hosts) {
  using cproxy::control::upstream_host;
  BOOST_TEST(*upstream_host("localhost") == "localhost");
  BOOST_TEST(*upstream_host("LOCALHOST") == "localhost");
  BOOST_TEST(*upstream_host("127.0.0.1") == "127.0.0.1");
  BOOST_TEST(*upstream_host("::1") == "::1");
  BOOST_TEST(*upstream_host("[::1]") == "::1");
  BOOST_TEST(*upstream_host("FE80::1") == "fe80::1");
  for (const std::string bad :
       {"", "example.com", "[127.0.0.1]", "127.0.0.1:80", "[::1]:80", "[]", "256.0.0.1"})
    BOOST_TEST(!upstream_host(bad).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(text_positions) {
  using cproxy::control::text_position;
  BOOST_TEST(text_position("", 0) == "line 1, column 1");
  BOOST_TEST(text_position("abc", 2) == "line 1, column 3");
  BOOST_TEST(text_position("ab\ncd", 3) == "line 2, column 1");
  BOOST_TEST(text_position("ab\ncd\nef", 7) == "line 3, column 2");
  BOOST_TEST(text_position("ab", 99) == "line 1, column 3");  // past the end: the end
}

BOOST_AUTO_TEST_CASE(small_file_reads) {
  temp_dir dir;
  std::string out;
  const std::string file = dir.write("f", "12345");
  BOOST_TEST(cproxy::control::read_small_file(file, out, 5) == 0);
  BOOST_TEST(out == "12345");
  BOOST_TEST(cproxy::control::read_small_file(file, out, 4) == EFBIG);
  BOOST_TEST(out == "");
  BOOST_TEST(cproxy::control::read_small_file(dir.path + "/none", out, 4) == ENOENT);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(home)

BOOST_AUTO_TEST_CASE(privateconnect_home_wins) {
  env_override own("PRIVATECONNECT_HOME");
  env_override home("HOME");
  home.set("/home/someone");
  own.set("/tmp/pc-home");
  BOOST_TEST(cproxy::control::home_folder() == "/tmp/pc-home");
  own.set("/tmp/pc-home//");
  BOOST_TEST(cproxy::control::home_folder() == "/tmp/pc-home");
  own.set("");  // set but empty counts as unset
  BOOST_TEST(cproxy::control::home_folder() == "/home/someone/.privateconnect");
  own.unset();
  BOOST_TEST(cproxy::control::home_folder() == "/home/someone/.privateconnect");
  home.set("/home/someone/");
  BOOST_TEST(cproxy::control::home_folder() == "/home/someone/.privateconnect");
  home.set("/");
  BOOST_TEST(cproxy::control::home_folder() == "/.privateconnect");
}

BOOST_AUTO_TEST_CASE(without_home_the_password_database_answers) {
  env_override own("PRIVATECONNECT_HOME");
  env_override home("HOME");
  own.unset();
  home.unset();
  const std::string folder = cproxy::control::home_folder();
  // Whatever the account's home is, the folder is inside it; only computed, never created here.
  BOOST_TEST(folder.ends_with("/.privateconnect"), folder);
}

BOOST_AUTO_TEST_CASE(ensure_creates_nested_folders_0700) {
  temp_dir dir;
  env_override own("PRIVATECONNECT_HOME");
  const std::string folder = dir.path + "/a/b/home";
  own.set(folder);
  // The umask must not decide the mode: the contract says 0700.
  const mode_t old_mask = ::umask(0777);
  std::string error;
  const bool ok = cproxy::control::ensure_home_folder(error);
  ::umask(old_mask);
  BOOST_TEST_REQUIRE(ok, error);
  BOOST_TEST(error == "");
  BOOST_TEST(mode_of(folder) == 0700u);
  // Created twice is still fine.
  BOOST_TEST(cproxy::control::ensure_home_folder(error));
}

BOOST_AUTO_TEST_CASE(ensure_leaves_an_existing_folder_alone) {
  temp_dir dir;
  env_override own("PRIVATECONNECT_HOME");
  const std::string folder = dir.path + "/home";
  BOOST_TEST_REQUIRE(::mkdir(folder.c_str(), 0755) == 0);
  ::chmod(folder.c_str(), 0755);
  own.set(folder);
  std::string error;
  BOOST_TEST(cproxy::control::ensure_home_folder(error), error);
  BOOST_TEST(mode_of(folder) == 0755u);
}

BOOST_AUTO_TEST_CASE(ensure_fails_on_a_file) {
  temp_dir dir;
  env_override own("PRIVATECONNECT_HOME");
  const std::string file = dir.write("home", "x");
  own.set(file);
  std::string error;
  BOOST_TEST(!cproxy::control::ensure_home_folder(error));
  BOOST_TEST(error == "cannot use the home folder " + file + ": it exists but is not a folder");
  own.set(file + "/inner");
  BOOST_TEST(!cproxy::control::ensure_home_folder(error));
  BOOST_TEST(error == "cannot create the home folder " + file + "/inner: Not a directory");
  own.set(file + "/inner/deeper");
  BOOST_TEST(!cproxy::control::ensure_home_folder(error));
  BOOST_TEST(error ==
             "cannot create the home folder " + file + "/inner/deeper: " + file + "/inner: Not a directory");
}

BOOST_AUTO_TEST_SUITE_END()
