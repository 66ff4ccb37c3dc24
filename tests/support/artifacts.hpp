// Where tests keep files for people to look at after a run (screenshots): beside the test binary, in the
// build tree, never in the source tree ctest or a developer happens to run from.
#pragma once

#include <boost/test/unit_test.hpp>
#include <filesystem>

namespace cproxy::test_support {

inline std::filesystem::path artifact_dir() {
  const auto& suite = boost::unit_test::framework::master_test_suite();
  return std::filesystem::absolute(suite.argv[0]).parent_path();
}

}  // namespace cproxy::test_support
