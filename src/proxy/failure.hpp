// failure: what went wrong with one exchange, classified by who caused it (the client, the upstream,
// or the proxy itself), so that the answer the client gets and the one log line follow mechanically
// from it (answer_for in failure.cpp). Every stage reports its failure edge as one of these.
#pragma once

#include <string>

namespace cproxy::proxy {

enum class failure_source { downstream, upstream, internal };

enum class failure_kind {
  bad_request,       // malformed head or body framing from the client: 400, both connections closed
  head_too_large,    // a request head over the limit: 431
  body_too_large,    // a request body over --max-body: 413
  client_gone,       // the client closed, reset or stalled: nobody to answer
  refused,           // the upstream refused the connection: 502 "not responding"
  connect_timeout,   // the upstream did not accept in time: 504
  response_timeout,  // the upstream accepted but sent no response head in time: 504
  upstream_closed,   // the upstream closed before its response head was complete: 502
  upstream_stalled,  // the upstream stopped reading the request (its body): 502
  invalid_response,  // an unparsable or ambiguous response head, or a 101 nobody asked for: 502
  unreachable,       // the route's address cannot be dialled at all: 502 with the reason
  route_gone,        // the route went away while the request was held (hold.cpp): a new request's 404
};

struct failure {
  failure_source source = failure_source::internal;
  failure_kind kind = failure_kind::client_gone;
  // Some of the response already reached the client: the only answer left is closing the connection.
  bool response_started = false;
  // Nothing of the request can have been acted on (a pooled connection the upstream had closed):
  // the exchange may be tried once more on a fresh connection.
  bool retryable = false;
  std::string detail;  // for the log line and, where the contract puts it there, the JSON reason
  // Its log line is written already: a held request's refusal, which its outage's lines tell (hold.cpp).
  bool logged = false;
  // route_gone: the whole 404, made where the newest route table is at hand (its "available" list).
  std::string answer{};
};

inline failure downstream_failure(failure_kind kind, std::string detail = {}) {
  return failure{failure_source::downstream, kind, false, false, std::move(detail)};
}
inline failure upstream_failure(failure_kind kind, std::string detail = {}) {
  return failure{failure_source::upstream, kind, false, false, std::move(detail)};
}

}  // namespace cproxy::proxy
