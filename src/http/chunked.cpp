// Implementation of connect/http/chunked.hpp.
#include "connect/http/chunked.hpp"

namespace cproxy::http {
namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool is_ctl(unsigned char c) noexcept {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}
}  // namespace

chunked_scanner::status chunked_scanner::feed(std::string_view bytes, std::size_t& used, std::string* data,
                                              std::string* trailers) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const char c = bytes[i];
    switch (state_) {
      case state::size: {
        const int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > 15) return status::invalid;  // 16 hex digits could overflow 64 bits
          remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
        } else if (digits_ > 0 && c == ';') {
          state_ = state::extension;
        } else if (digits_ > 0 && c == '\r') {
          state_ = state::size_lf;
        } else {
          return status::invalid;
        }
        ++i;
        break;
      }
      case state::extension:
        if (c == '\r') {
          state_ = state::size_lf;
        } else if (is_ctl(static_cast<unsigned char>(c))) {
          return status::invalid;
        }
        ++i;
        break;
      case state::size_lf:
        if (c != '\n') return status::invalid;
        state_ = remaining_ == 0 ? state::trailer_start : state::data;
        ++i;
        break;
      case state::data: {
        const std::uint64_t take = bytes.size() - i < remaining_ ? bytes.size() - i : remaining_;
        if (data) data->append(bytes.substr(i, static_cast<std::size_t>(take)));
        payload_ += take;
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = state::data_cr;
        break;
      }
      case state::data_cr:
        if (c != '\r') return status::invalid;
        state_ = state::data_lf;
        ++i;
        break;
      case state::data_lf:
        if (c != '\n') return status::invalid;
        state_ = state::size;
        digits_ = 0;
        ++i;
        break;
      case state::trailer_start:
        if (c == '\r') {
          state_ = state::last_lf;
        } else if (c == ' ' || c == '\t' || c == '\n' || is_ctl(static_cast<unsigned char>(c))) {
          return status::invalid;
        } else {
          state_ = state::trailer;
          if (trailers) trailers->push_back(c);
        }
        ++i;
        break;
      case state::trailer:
        if (c == '\r') {
          state_ = state::trailer_lf;
        } else if (is_ctl(static_cast<unsigned char>(c))) {
          return status::invalid;
        } else if (trailers) {
          trailers->push_back(c);
        }
        ++i;
        break;
      case state::trailer_lf:
        if (c != '\n') return status::invalid;
        if (trailers) trailers->push_back('\n');
        state_ = state::trailer_start;
        ++i;
        break;
      case state::last_lf:
        if (c != '\n') return status::invalid;
        state_ = state::done;
        used = i + 1;
        return status::done;
      case state::done:
        used = i;
        return status::done;
    }
  }
  used = i;
  return state_ == state::done ? status::done : status::more;
}

}  // namespace cproxy::http
