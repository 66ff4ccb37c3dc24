// Runs a real client program (curl) as a child process with its output captured and a deadline, for the
// cases where a real client's behaviour matters more than exact bytes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace cproxy::http_test {

struct program_result {
  int status = -1;  // exit code, 128 + signal, or -1 if it had to be killed at the deadline
  std::string out;
  std::string err;
};

// argv[0] is looked up on PATH. Killed (by its pid) if it runs past the deadline.
program_result run_program(const std::vector<std::string>& argv, std::chrono::milliseconds deadline);

}  // namespace cproxy::http_test
