// io_result: what a byte operation returns. Errors are std::error_code values in the generic (errno)
// category; 0 bytes from a read means the peer closed its sending side (EOF).
#pragma once

#include <cerrno>
#include <cstddef>
#include <system_error>

namespace cproxy::io {

struct io_result {
  std::error_code ec;
  std::size_t bytes = 0;
  explicit operator bool() const noexcept { return !ec; }
};

// Converts a kernel-style result (>= 0 a count, < 0 a negated errno) into an error code.
inline std::error_code error_from_res(int res) noexcept {
  return res < 0 ? std::error_code(-res, std::generic_category()) : std::error_code{};
}

inline bool is_cancelled(const std::error_code& ec) noexcept {
  return ec == std::errc::operation_canceled;
}
inline bool is_timeout(const std::error_code& ec) noexcept {
  return ec == std::errc::timed_out;
}

}  // namespace cproxy::io
