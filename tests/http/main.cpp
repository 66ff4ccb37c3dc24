// The HTTP data path suite's module: the real proxy on both io backends between real upstreams started
// in-process and real clients. A proxy closing a connection on us must fail a check, not kill the test
// process, so SIGPIPE is ignored for the whole run.
#define BOOST_TEST_MODULE http
#include <signal.h>

#include <boost/test/unit_test.hpp>

namespace {

struct ignore_sigpipe {
  ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(ignore_sigpipe);
