# Toolchain: macOS with Apple clang and Homebrew Boost/OpenSSL. Only the asio backend (kqueue) exists there;
# io_uring is Linux-only. Cannot be built on this project's Linux CI; kept so the fallback stays portable.
set(CMAKE_SYSTEM_NAME Darwin)
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CONNECT_WITH_URING OFF CACHE BOOL "" FORCE)
list(APPEND CMAKE_PREFIX_PATH /opt/homebrew /usr/local)
