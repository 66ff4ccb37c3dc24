// isolated_home: a proxy home plus a HOME and a trust-store root of its own, so no real trust store is
// ever read, and run(): the connect binary run to its end in that home.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "proxy_home.hpp"

namespace cproxy::test {

struct isolated_home {
  proxy_home home;
  std::string user_home = home.path + "/user";
  std::string trust_root = home.path + "/root";
  isolated_home() {
    std::filesystem::create_directories(user_home);
    std::filesystem::create_directories(trust_root);
  }
  std::vector<std::string> env() const {
    return {home.env(), "HOME=" + user_home, "CONNECT_PROXY_TRUST_ROOT=" + trust_root};
  }
};

struct run_result {
  int code;
  std::string out;
  std::string err;
};

inline run_result run(const isolated_home& h, std::vector<std::string> args) {
  child_process p({.args = std::move(args), .extra_env = h.env(), .refuse_io_uring = false});
  const int code = p.wait_exit(std::chrono::seconds(30)).value_or(-1);
  return {code, p.out(), p.err()};
}

}  // namespace cproxy::test
