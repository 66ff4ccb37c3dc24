// The io backends this build has, by the names `--io` takes, for tests that start the real binary once
// per backend: both, or asio alone in a build without io_uring (-DCONNECT_WITH_URING=OFF, the asio-only
// flavour of toolchains/test.sh), where `--io uring` must fail rather than be tested.
#pragma once

namespace cproxy::test {

#ifdef CONNECT_TEST_WITH_URING
inline const char* const built_backends[] = {"uring", "asio"};
#else
inline const char* const built_backends[] = {"asio"};
#endif

}  // namespace cproxy::test
