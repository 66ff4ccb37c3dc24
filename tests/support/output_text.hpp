// Checks on the text a child process writes (a proxy's log): how often a needle stands in it, and waiting
// until it shows one.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <thread>

namespace cproxy::test {

// How many times `needle` stands in `text`, occurrences not overlapping.
inline std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// Reads `text()` every `interval` until it holds `needle`; false if it still does not after `deadline`.
template <class Text>
bool wait_for_text(Text text, std::string_view needle, std::chrono::milliseconds deadline,
                   std::chrono::milliseconds interval) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (text().find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace cproxy::test
