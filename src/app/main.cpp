// connect: the program. Everything happens in the control plane; this only turns a stray exception
// (a bug, since the data path reports errors as values) into a message and exit code 1.
#include <exception>
#include <iostream>

#include "connect/daemon/cli.hpp"

int main(int argc, char** argv) {
  try {
    return cproxy::control::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "[x] " << e.what() << "\n";
    return 1;
  }
}
