// The io backends every io test case runs on, and the skip logic: CPROXY_IO_TEST_CASE(name) defines a
// template test case instantiated once per backend (name<uring_backend>, name<asio_backend>); the uring
// instance is skipped, with a message on stderr saying why, when io::probe_uring() reports a reason.
#pragma once

#include <boost/mpl/list.hpp>
#include <iostream>
#include <string>
#include <string_view>

#include "connect/io/backend.hpp"
#include "connect/io/select_backend.hpp"
#include "support/unit_test.hpp"

// In the global namespace on purpose: the test case names become echo<uring_backend>, which
// --run_test can name (a "::" in a name would read as a list separator).
struct uring_backend {
  static constexpr cproxy::io::backend_kind kind = cproxy::io::backend_kind::uring;
};
struct asio_backend {
  static constexpr cproxy::io::backend_kind kind = cproxy::io::backend_kind::asio;
};

namespace cproxy::test {

using all_backends = boost::mpl::list<uring_backend, asio_backend>;

// Empty when io_uring can run here; probed once per process.
inline const std::string& uring_unusable_reason() {
  static const std::string reason = io::probe_uring();
  return reason;
}

// A Boost.Test precondition: false (the test is reported "skipped") for a uring instance on a machine
// where io_uring is unusable. Boost logs skips only at --log_level=test_suite, so say it on stderr too.
inline boost::test_tools::assertion_result backend_usable(boost::unit_test::test_unit_id id) {
  const boost::unit_test::test_unit& tu = boost::unit_test::framework::get(id, boost::unit_test::TUT_ANY);
  const std::string name = tu.p_name.get();
  const std::string_view uring_suffix = "<uring_backend>";
  const bool is_uring =
      name.size() >= uring_suffix.size() &&
      name.compare(name.size() - uring_suffix.size(), uring_suffix.size(), uring_suffix) == 0;
  if (!is_uring || uring_unusable_reason().empty()) return true;
  std::cerr << "*** SKIPPED " << tu.full_name()
            << ": io_uring is not usable here: " << uring_unusable_reason() << '\n';
  boost::test_tools::assertion_result skip(false);
  skip.message() << "io_uring is not usable here: " << uring_unusable_reason();
  return skip;
}

}  // namespace cproxy::test

// A test case run once per backend; in its body `Backend::kind` is the backend under test. The Boost
// timeout is the last resort against a hang: tests bound themselves first (see support/run.hpp).
#define CPROXY_IO_TEST_CASE(test_name)                                                    \
  BOOST_TEST_DECORATOR(*boost::unit_test::precondition(&::cproxy::test::backend_usable) * \
                       boost::unit_test::timeout(300))                                    \
  BOOST_AUTO_TEST_CASE_TEMPLATE(test_name, Backend, ::cproxy::test::all_backends)
