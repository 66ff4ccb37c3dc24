// SHA-256 (OpenSSL EVP) for comparing large bodies at both ends, and reproducible pattern bodies from
// support/bytes.hpp so that a dropped, repeated or reordered block changes the digest.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/bytes.hpp"

namespace cproxy::http_test {

class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::runtime_error("EVP sha256");
  }
  ~sha256() { EVP_MD_CTX_free(ctx_); }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

inline std::string sha256_hex(std::string_view bytes) {
  sha256 h;
  h.update(bytes);
  return h.hex();
}

// `n` bytes of the pattern stream `seed`.
inline std::string pattern_body(std::uint64_t seed, std::size_t n) {
  std::string out(n, '\0');
  test::fill_pattern(seed, 0, std::as_writable_bytes(std::span<char>(out.data(), out.size())));
  return out;
}

}  // namespace cproxy::http_test
