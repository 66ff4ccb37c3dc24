# Toolchain: clang with libstdc++ (a second compiler to keep the code portable; apt-get install clang).
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
