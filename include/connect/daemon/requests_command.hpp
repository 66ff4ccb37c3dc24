// `connect proxy requests [--route NAME] [--limit N] [--json] [--follow] [--har FILE]`: the running
// proxy's request inspector on the terminal (product.md, Inspector).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace cproxy::control {

struct requests_args {
  std::string route;
  std::optional<std::size_t> limit;
  bool json = false;
  bool follow = false;
  std::string har;  // a file to write the HAR to; "" for the list
};

// Exit 0, or 1 when the proxy is not running or does not answer.
int run_requests(const requests_args& args);

}  // namespace cproxy::control
