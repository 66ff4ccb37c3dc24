// What the restart-holding tests share: waiting for a line of the proxy's log, and one request on a
// connection of its own whose outcome (status, body, or why none came) a thread reports back.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "support/output_text.hpp"

// Named, not anonymous: the cases' lambdas capture these types (GCC's -Wsubobject-linkage).
namespace hold_helpers {

using namespace cproxy::http_test;

// Waits (bounded) until the proxy's log shows `needle`.
inline bool log_shows(proxy_instance& p, std::string_view needle, ms deadline = 10s) {
  return cproxy::test::wait_for_text([&p] { return p.log_text(); }, needle, deadline, 20ms);
}

struct outcome {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string error;
};

// Sends `bytes` on a new connection and reads the final response within `deadline`; `sent`, if given,
// counts the request once it is sent (or failed to be).
inline outcome exchange_once(unsigned port, const std::string& bytes, ms deadline,
                             std::atomic<int>* sent = nullptr) {
  outcome o;
  raw_client c(port);
  if (!c.ok() || !c.send(bytes)) {
    o.error = c.error();
    if (sent) ++*sent;
    return o;
  }
  if (sent) ++*sent;
  const auto r = c.read_final_response(deadline);
  if (!r) {
    o.error = c.error();
    return o;
  }
  o.status = r->status;
  o.body = r->body;
  o.content_type = r->get("content-type").value_or("");
  return o;
}

}  // namespace hold_helpers
