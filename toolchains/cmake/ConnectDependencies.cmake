# Finds the libraries connect-proxy links: Boost 1.81 (headers + json, url, program_options, unit_test_framework),
# liburing (Linux), OpenSSL 3, nghttp2 (HTTP/2 to clients) and libseccomp (tests only). toolchains/setup-deps.sh installs them on Debian 12.
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json url program_options unit_test_framework)
find_package(OpenSSL 3.0 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBNGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2>=1.52)

if(CONNECT_WITH_URING)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBURING REQUIRED IMPORTED_TARGET liburing>=2.3)
endif()
if(LINUX)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBSECCOMP IMPORTED_TARGET libseccomp)
endif()
