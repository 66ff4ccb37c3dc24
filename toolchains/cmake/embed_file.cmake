# Turns a file into a C++ source defining `std::string_view NAME` with its bytes, so the binary serves
# it without reading files at run time. Usage: cmake -DIN=file -DOUT=file.cpp -DNAME=ns::name -P embed_file.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," chars "${hex}")
string(REGEX MATCH "^(.*)::([^:]+)$" _ "${NAME}")
set(ns "${CMAKE_MATCH_1}")
set(var "${CMAKE_MATCH_2}")
file(WRITE "${OUT}" "// Generated from ${IN} by toolchains/cmake/embed_file.cmake: do not edit.\n#include <string_view>\nnamespace ${ns} {\nnamespace {\nconstexpr char bytes[] = {${chars}};\n}\nextern const std::string_view ${var};\nconst std::string_view ${var}(bytes, sizeof bytes);\n}\n")
