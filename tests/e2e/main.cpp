// The end-to-end suite: runs the real `connect` binary as a child process.
#define BOOST_TEST_MODULE connect_e2e
#include <boost/test/unit_test.hpp>
