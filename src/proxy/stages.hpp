// The stages of one exchange, in the order docs/architecture.md draws them. The front-end
// (connection.cpp: sniff, tls_accept, read_request) hands each complete request to run_exchange, which
// strings these together; each stage reports its failure edge as a `failure`, which answer_failure
// turns into the contract's answer and one log line.
#pragma once

#include <optional>
#include <string>

#include "client_side.hpp"
#include "connect/coro/task.hpp"
#include "connect/http/rewrite.hpp"
#include "exchange.hpp"
#include "upstream_connector.hpp"

namespace cproxy::proxy {

// How an exchange left its client connection.
enum class exchange_end { keep_alive, close };

// resolve_route: where this request goes. Either a route to proxy to (`route` set), or the proxy's own
// answer (own page, 404, 421, 508, 413) with its status.
struct route_decision {
  const route::route* route = nullptr;
  unsigned status = 0;
  std::string answer;
  bool keep_alive = false;
  http::hop_trail trail;  // the loop-detection headers the request carries on
  bool own_page = false;  // the proxy's own page (and the inspector's API under /_connect/)
};
route_decision resolve_route(client_side* c, exchange* ex);

// connect_upstream: a pooled connection, or a new one within the connect timeout.
coro::task<dial_result> connect_upstream(client_side* c, exchange* ex, bool allow_pooled);

// forward_request: the rewritten head, then the body unless it waits for a 100 Continue (`body_sent`
// says whether it went).
coro::task<std::optional<failure>> forward_request(client_side* c, exchange* ex, io::stream* up,
                                                   const http::hop_trail* trail, bool* body_sent);
// The request body by its framing, checked as it passes (also sent later, on a 100 Continue).
coro::task<std::optional<failure>> send_request_body(client_side* c, exchange* ex, io::stream* up);

// relay_response: the response head (1xx passed on), then the body, or a tunnel after a 101.
struct response_outcome {
  exchange_end end = exchange_end::close;
  bool upstream_reusable = false;  // the upstream connection may carry another request
  std::optional<failure> failed;
};
coro::task<response_outcome> relay_response(client_side* c, exchange* ex, io::stream* up, bool body_sent,
                                            bool replayable);

// tunnel: a CONNECT to a routed name: 200 Connection Established, then bytes both ways.
coro::task<exchange_end> open_tunnel(client_side* c, exchange* ex);

// The whole exchange for one complete request head: the stages above, a retry on a fresh upstream
// connection when a pooled one turned out closed, and the answer to any failure.
coro::task<exchange_end> run_exchange(client_side* c, exchange* ex);

// Sends an answer the proxy made itself, noting its status and size on the exchange.
coro::task<exchange_end> send_own_answer(client_side* c, exchange* ex, unsigned status, std::string answer,
                                         bool keep_alive);
// Turns `f` into the contract's answer (when one can still be sent) and one log line; records it on the
// exchange. The connection always closes after a failure.
coro::task<exchange_end> answer_failure(client_side* c, exchange* ex, failure f);

}  // namespace cproxy::proxy
