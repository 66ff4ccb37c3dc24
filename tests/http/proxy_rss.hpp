// The resident memory of a proxy under test (VmRSS from /proc/PID/status, the pid from its
// proxy-state.json), and the bound the HTTP/2 defence cases hold it to.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "http/client_helpers.hpp"

namespace cproxy::http_test {

// A proxy serving a few connections sits near 8 MiB (measured: 8-9 MiB at the peak of every flood and
// of ten HPACK bombs); an attacker it did not bound would take it far past 64 MiB (16 MB decoded per
// HPACK bomb, a queued answer per flood frame). Under ASan (the asan flavour builds the proxy with it
// too) freed memory waits in a quarantine of up to 256 MiB before it is reused, and shadow memory adds
// its share, so the bound there is that much higher.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::uint64_t flood_rss_limit_kib = (64 + 256) * 1024;
#else
inline constexpr std::uint64_t flood_rss_limit_kib = 64 * 1024;
#endif

// VmRSS in KiB of the proxy whose home is `home`; 0 if it cannot be read.
inline std::uint64_t proxy_rss_kib(const std::string& home) {
  std::ifstream state(home + "/proxy-state.json");
  std::stringstream text;
  text << state.rdbuf();
  const auto v = parse_json(text.str());
  if (!v || !v->is_object() || !v->as_object().contains("pid")) return 0;
  const std::int64_t pid = v->at("pid").to_number<std::int64_t>();
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  return 0;
}

// The highest VmRSS seen over the samples a case takes.
class rss_peak {
 public:
  explicit rss_peak(std::string home) : home_(std::move(home)) {}
  std::uint64_t sample() {
    const std::uint64_t now = proxy_rss_kib(home_);
    if (now > peak_) peak_ = now;
    ++samples_;
    return now;
  }
  std::uint64_t peak() const { return peak_; }
  int samples() const { return samples_; }

 private:
  std::string home_;
  std::uint64_t peak_ = 0;
  int samples_ = 0;
};

}  // namespace cproxy::http_test
