// Fuzz target: http::chunked_scanner over a chunked body cut at fuzzed split points, as a relay hands
// it over. The first byte is how many cuts (0..15), then two bytes per cut (an offset), then the body.
// Invariants: whole and cut give the same verdict and the same end of the body; the payload collected is
// the same; `used` never passes the bytes given.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "connect/http/chunked.hpp"
#include "fuzz_check.hpp"

namespace http = cproxy::http;
using scanner = http::chunked_scanner;

namespace {

struct outcome {
  scanner::status status = scanner::status::more;
  std::size_t used = 0;  // bytes of the stream that belong to the body
  std::string payload;   // what was collected
  std::uint64_t payload_bytes = 0;
};

outcome run(std::string_view body, const std::vector<std::size_t>& cuts) {
  scanner s;
  outcome o;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(body.size());
  for (const std::size_t to : ends) {
    const std::string_view piece = body.substr(from, to - from);
    from = to;
    std::size_t used = 0;
    o.status = s.feed(piece, used, &o.payload);
    FUZZ_CHECK(used <= piece.size());
    if (o.status == scanner::status::invalid) break;
    o.used += used;
    if (o.status == scanner::status::done) break;
    FUZZ_CHECK(used == piece.size());
  }
  o.payload_bytes = s.payload_bytes();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut_count = data[0] % 16;
  if (size < 1 + 2 * cut_count) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1 + 2 * cut_count),
                              size - 1 - 2 * cut_count);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < cut_count; ++i) {
    const std::size_t at = (std::size_t{data[1 + 2 * i]} << 8 | data[2 + 2 * i]) % (body.size() + 1);
    cuts.push_back(at);
  }
  std::sort(cuts.begin(), cuts.end());

  const outcome whole = run(body, {});
  const outcome pieces = run(body, cuts);
  FUZZ_CHECK(pieces.status == whole.status);
  if (whole.status == scanner::status::invalid) return 0;
  FUZZ_CHECK(whole.used <= body.size());
  if (whole.status == scanner::status::more) FUZZ_CHECK(whole.used == body.size());
  FUZZ_CHECK(pieces.used == whole.used);
  FUZZ_CHECK(pieces.payload == whole.payload);
  FUZZ_CHECK(whole.payload.size() == whole.payload_bytes);
  FUZZ_CHECK(pieces.payload_bytes == whole.payload_bytes);
  if (whole.status == scanner::status::done) {
    // The body ends in the last chunk's CRLF CRLF (or a trailer's).
    FUZZ_CHECK(whole.used >= 5);
    FUZZ_CHECK(body.substr(whole.used - 4, 4) == "\r\n\r\n");
  }
  return 0;
}
