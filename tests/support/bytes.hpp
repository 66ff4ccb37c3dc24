// Test data: a reproducible pseudo-random byte stream addressable by offset (so a reader can check any
// slice it receives), and FNV-1a 64, an incremental hash to compare long streams at both ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace cproxy::test {

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Byte `offset` of the stream named `seed`. Never periodic, so a dropped, repeated or reordered block
// shows up as a mismatch.
inline std::byte pattern_byte(std::uint64_t seed, std::uint64_t offset) noexcept {
  const std::uint64_t word = splitmix64(seed * 0x100000001b3ULL ^ (offset >> 3));
  return static_cast<std::byte>(word >> ((offset & 7) * 8));
}

// Fills `out` with the stream `seed` from `offset` on.
inline void fill_pattern(std::uint64_t seed, std::uint64_t offset, std::span<std::byte> out) noexcept {
  std::size_t i = 0;
  while (i < out.size() && ((offset + i) & 7) != 0) {
    out[i] = pattern_byte(seed, offset + i);
    ++i;
  }
  for (; i + 8 <= out.size(); i += 8) {
    const std::uint64_t word = splitmix64(seed * 0x100000001b3ULL ^ ((offset + i) >> 3));
    std::memcpy(out.data() + i, &word, 8);  // little-endian, as pattern_byte reads it (x86, arm64)
  }
  for (; i < out.size(); ++i) out[i] = pattern_byte(seed, offset + i);
}

// The index of the first byte of `got` that differs from the stream at `offset`, or got.size().
inline std::size_t first_mismatch(std::uint64_t seed, std::uint64_t offset, std::span<const std::byte> got) {
  std::byte expected[4096];
  for (std::size_t done = 0; done < got.size();) {
    const std::size_t n = got.size() - done < sizeof expected ? got.size() - done : sizeof expected;
    fill_pattern(seed, offset + done, std::span<std::byte>(expected, n));
    if (std::memcmp(expected, got.data() + done, n) != 0) {
      for (std::size_t k = 0; k < n; ++k) {
        if (expected[k] != got[done + k]) return done + k;
      }
    }
    done += n;
  }
  return got.size();
}

inline bool matches_pattern(std::uint64_t seed, std::uint64_t offset, std::span<const std::byte> got) {
  return first_mismatch(seed, offset, got) == got.size();
}

class fnv1a64 {
 public:
  void update(std::span<const std::byte> bytes) noexcept {
    for (std::byte b : bytes) {
      h_ ^= static_cast<std::uint64_t>(b);
      h_ *= 0x100000001b3ULL;
    }
    count_ += bytes.size();
  }
  std::uint64_t value() const noexcept { return h_; }
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
  std::uint64_t count_ = 0;
};

}  // namespace cproxy::test
