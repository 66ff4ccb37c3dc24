// Fuzz target: the hub's answer to GET /v1/services: the HTTP response through the poller's sans-I/O
// reader (hub_http::response_reader), fed whole and cut at fuzzed points, then its body through
// control::parse_hub_services. The input after the cuts is also given to parse_hub_services as it is,
// so JSON seeds reach the services reader directly. Layout: a byte of cut count (0..15), two bytes per
// cut, the bytes.
// Invariants: the reader's verdict, status code and body do not depend on how the bytes arrive; a body
// stays within 1 MiB; an unusable answer gives no routes; each route is a valid name on 127.0.0.1.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "connect/config/config_file.hpp"
#include "connect/feed/route_feed.hpp"
#include "feed/route_feed_http.hpp"
#include "fuzz_check.hpp"

namespace control = cproxy::control;
using reader = control::hub_http::response_reader;

namespace {

struct outcome {
  reader::status status = reader::status::more;
  unsigned code = 0;
  std::string body;
};

outcome read(std::string_view bytes, const std::vector<std::size_t>& cuts) {
  reader r;
  outcome o;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(bytes.size());
  for (const std::size_t to : ends) {
    o.status = r.feed(bytes.substr(from, to - from));
    from = to;
    if (o.status != reader::status::more) break;
  }
  if (o.status == reader::status::more) o.status = r.finish();
  FUZZ_CHECK(o.status != reader::status::more);
  FUZZ_CHECK((o.status == reader::status::invalid) == !r.error().empty());
  o.code = r.code();
  o.body = r.body();
  return o;
}

void check_services(std::string_view json_text) {
  const control::hub_services_result s = control::parse_hub_services(json_text);
  if (!s.error.empty()) FUZZ_CHECK(s.routes.empty());
  for (const cproxy::route::route& route : s.routes) {
    FUZZ_CHECK(control::is_route_name(route.name, true));
    for (const char c : route.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(route.host == "127.0.0.1");
    FUZZ_CHECK(route.port >= 1);
    FUZZ_CHECK(route.from == cproxy::route::source::hub);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut_count = data[0] % 16;
  if (size < 1 + 2 * cut_count) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1 + 2 * cut_count),
                               size - 1 - 2 * cut_count);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < cut_count; ++i)
    cuts.push_back((std::size_t{data[1 + 2 * i]} << 8 | data[2 + 2 * i]) % (bytes.size() + 1));
  std::sort(cuts.begin(), cuts.end());

  check_services(bytes);
  const outcome whole = read(bytes, {});
  const outcome pieces = read(bytes, cuts);
  FUZZ_CHECK(pieces.status == whole.status);
  if (whole.status != reader::status::done) return 0;
  FUZZ_CHECK(whole.code >= 200 && whole.code <= 999);
  FUZZ_CHECK(pieces.code == whole.code);
  FUZZ_CHECK(pieces.body == whole.body);
  FUZZ_CHECK(whole.body.size() <= control::hub_http::max_body);
  check_services(whole.body);
  return 0;
}
