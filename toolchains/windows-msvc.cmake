# Toolchain: Windows with MSVC and vcpkg's Boost/OpenSSL. Only the asio backend (IOCP) exists there.
# Cannot be built on this project's Linux CI; kept so the fallback stays portable.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_C_COMPILER cl)
set(CMAKE_CXX_COMPILER cl)
set(CONNECT_WITH_URING OFF CACHE BOOL "" FORCE)
if(DEFINED ENV{VCPKG_ROOT})
  include($ENV{VCPKG_ROOT}/scripts/buildsystems/vcpkg.cmake)
endif()
