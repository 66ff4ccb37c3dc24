// answer_for: the one mapping from a failure to what the client is told and what the log says.
// Pure: no I/O (the stage that sends it is answer_failure in stages.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "connect/route/table.hpp"
#include "failure.hpp"

namespace cproxy::proxy {

struct failure_answer {
  unsigned status = 0;   // 0: nothing can be sent (the client is gone, or the response had started)
  std::string response;  // the whole HTTP/1.1 response, Connection: close
  std::string log_line;  // "" when the failure is not worth a line (a client that left)
};

// `route`: the exchange's route, or null before one was resolved. `client_ip` names the client in the
// line of a bad request; `max_body` is the limit a 413 states. `html`: a browser navigation, whose
// 502 and 504 are HTML pages (the others stay JSON: they answer requests no browser navigation makes).
failure_answer answer_for(const failure& f, const route::route* route, std::string_view client_ip,
                          std::uint64_t max_body, bool html = false);

}  // namespace cproxy::proxy
