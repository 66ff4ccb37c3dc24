# Toolchain: Debian 12's GCC 12 (the reference compiler; CI builds with it).
set(CMAKE_C_COMPILER gcc)
set(CMAKE_CXX_COMPILER g++)
