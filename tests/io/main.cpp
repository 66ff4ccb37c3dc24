// The io conformance suite's module: every io test case runs once per backend (see support/backends.hpp).
// This file only names the module and says up front which backends will run and which will be skipped.
#define BOOST_TEST_MODULE connect_io
#include <iostream>

#include "connect/core/process_limits.hpp"
#include "support/backends.hpp"
#include "support/unit_test.hpp"

namespace {

struct announce_backends {
  announce_backends() {
    // A peer that goes away must be an EPIPE result in a test, not a dead test process.
    cproxy::ignore_sigpipe();
    const std::string& reason = cproxy::test::uring_unusable_reason();
    if (reason.empty()) {
      std::cerr << "io suite: backends under test: uring, asio\n";
    } else {
      std::cerr << "*** io suite: io_uring is NOT usable here (" << reason
                << "): every <uring_backend> case is SKIPPED; only asio is tested\n";
    }
  }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_backends);
