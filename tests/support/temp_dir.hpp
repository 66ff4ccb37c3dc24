// temp_dir: a fresh folder under /tmp for one test case, removed with everything in it at the end, so a
// test never touches the real home.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "support/unit_test.hpp"

namespace cproxy::test {

struct temp_dir {
  std::string path;
  // /tmp/PREFIX-XXXXXX; the prefix tells whose folder a leftover one was.
  explicit temp_dir(const std::string& prefix = "connect-unit") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    BOOST_TEST_REQUIRE(made != nullptr);
    path = made;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  // The path of `name` in the folder, made or not.
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string write(const std::string& name, std::string_view text) const {
    const std::string at = file(name);
    std::ofstream(at, std::ios::binary) << text;
    return at;
  }
};

}  // namespace cproxy::test
