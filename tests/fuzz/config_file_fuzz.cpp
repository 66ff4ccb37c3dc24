// Fuzz target: config.json text (control::parse_config), strict (--config) or not as the first byte's
// low bit chooses; a hubUrl it accepts also goes through the hub client's URL parser.
// Invariants: a value exactly when no error; every text names the file; a non-strict read never fails
// on an unknown key alone (a strict one never warns); what it accepts is within the contract's ranges.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connect/config/config_file.hpp"
#include "feed/route_feed_http.hpp"
#include "fuzz_check.hpp"

namespace control = cproxy::control;

namespace {

bool has_upper(std::string_view s) {
  for (const char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

bool in_range(const std::optional<unsigned>& seconds) {
  return !seconds || (*seconds >= 1 && *seconds <= control::max_timeout_seconds);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool strict = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string prefix = "config file fuzz.json: ";
  const control::config_result r = control::parse_config(text, "fuzz.json", strict);
  FUZZ_CHECK(r.value.has_value() == r.error.empty());
  if (!r.error.empty()) FUZZ_CHECK(r.error.starts_with(prefix));
  for (const std::string& w : r.warnings) FUZZ_CHECK(w.starts_with(prefix));
  if (strict) FUZZ_CHECK(r.warnings.empty());
  if (!r.value) return 0;

  const control::config& c = *r.value;
  if (c.port) FUZZ_CHECK(*c.port >= 1 && *c.port <= 65535);
  FUZZ_CHECK(in_range(c.timeouts.header) && in_range(c.timeouts.connect) && in_range(c.timeouts.idle) &&
             in_range(c.timeouts.response) && in_range(c.timeouts.tunnel_idle));
  for (const std::string& d : c.domains) {
    FUZZ_CHECK(control::is_route_name(d));
    FUZZ_CHECK(!has_upper(d));
  }
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const cproxy::route::route& route = c.routes[i];
    FUZZ_CHECK(control::is_route_name(route.name));
    FUZZ_CHECK(!has_upper(route.name));
    FUZZ_CHECK(route.port >= 1);
    FUZZ_CHECK(route.from == cproxy::route::source::config);
    FUZZ_CHECK(control::upstream_host(route.host).has_value());
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(c.routes[j].name != route.name);
  }
  if (c.hub_url) {
    std::string error;
    const auto url = control::hub_http::parse_url(*c.hub_url, error);
    if (url) FUZZ_CHECK(url->port >= 1 && !url->host.empty());
  }
  return 0;
}
