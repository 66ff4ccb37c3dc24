// The request inspector's HTTP API under /_connect/ on the own page's hosts (product.md, Inspector):
// list, detail, HAR, server-sent events, replay, clear, behind the Origin / Sec-Fetch-Site /
// Content-Type rules.
#pragma once

#include <string_view>

#include "client_side.hpp"
#include "connect/coro/task.hpp"
#include "exchange.hpp"
#include "stages.hpp"

namespace cproxy::proxy {

bool is_inspector_target(std::string_view target) noexcept;
// Answers one request to /_connect/ (its body, if any, read and dropped first).
coro::task<exchange_end> serve_inspector(client_side* c, exchange* ex);

}  // namespace cproxy::proxy
