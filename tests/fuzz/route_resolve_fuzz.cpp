// Fuzz target: Host normalisation and route lookup (route::normalize_host, route::resolve) against a
// small fixed table with dev domain "test". The first byte's low bit is proxy_form; the rest is the host.
// Invariants: a service's route is the table's own entry for the name it reports; an unknown service
// names no route; a foreign host only on an ordinary request; lookups ignore ASCII case.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connect/route/table.hpp"
#include "fuzz_check.hpp"

namespace route = cproxy::route;

namespace {

const route::table& fixed_table() {
  static const route::table t(
      {
          {"api", "localhost", 8080, route::source::config},
          {"web", "127.0.0.1", 3000, route::source::reach},
          {"db", "::1", 5432, route::source::hub},
          {"my_app", "localhost", 9000, route::source::reach},
          {"admin.api", "localhost", 8081, route::source::config},
          {"API", "localhost", 8082, route::source::hub},  // loses to the config route of the same name
      },
      {"test", ".Dev."});
  return t;
}

bool has_upper(std::string_view s) {
  for (const char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const route::table& t = fixed_table();
  const bool proxy_form = (data[0] & 1) != 0;
  const std::string_view host(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::string normal = route::normalize_host(host);
  FUZZ_CHECK(normal.size() <= host.size());
  FUZZ_CHECK(!has_upper(normal));

  const route::resolution r = route::resolve(t, host, proxy_form);
  const auto routes = t.routes();
  switch (r.what) {
    case route::resolution::kind::own_page:
      FUZZ_CHECK(r.target == nullptr);
      FUZZ_CHECK(normal == "localhost" || normal == "127.0.0.1" || normal == "[::1]" || normal == "::1");
      break;
    case route::resolution::kind::service:
      FUZZ_CHECK(r.target != nullptr);
      FUZZ_CHECK(r.target >= routes.data() && r.target < routes.data() + routes.size());
      FUZZ_CHECK(r.target->name == r.name);
      FUZZ_CHECK(t.find(r.name) == r.target);
      FUZZ_CHECK(r.target->name != "api" || r.target->port == 8080);
      break;
    case route::resolution::kind::unknown_service:
      FUZZ_CHECK(r.target == nullptr);
      FUZZ_CHECK(t.find(r.name) == nullptr);
      break;
    case route::resolution::kind::foreign_host:
      FUZZ_CHECK(r.target == nullptr);
      FUZZ_CHECK(!proxy_form);
      FUZZ_CHECK(r.name == normal);
      break;
  }
  FUZZ_CHECK(!has_upper(r.name));

  const route::resolution shouted = route::resolve(t, upper(host), proxy_form);
  FUZZ_CHECK(shouted.what == r.what);
  FUZZ_CHECK(shouted.target == r.target);
  FUZZ_CHECK(shouted.name == r.name);
  return 0;
}
