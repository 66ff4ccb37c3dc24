// temp_dir: a fresh folder under /tmp for one test case, removed with everything in it at the end, so a
// test never touches the real home.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "support/unit_test.hpp"

namespace cproxy::test {

struct temp_dir {
  std::string path;
  temp_dir() {
    char pattern[] = "/tmp/connect-unit-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    BOOST_TEST_REQUIRE(made != nullptr);
    path = made;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path + "/" + name;
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }
};

}  // namespace cproxy::test
