# Toolchain: GCC 12 with AddressSanitizer + UndefinedBehaviorSanitizer (the build type .ci/run tests under).
include(${CMAKE_CURRENT_LIST_DIR}/gcc.cmake)
set(CMAKE_BUILD_TYPE Asan CACHE STRING "" FORCE)
