// Implementation of connection.hpp: read_head -> resolve (own page, unknown service, foreign host)
// -> answer, looping while the client keeps the connection alive.
#include "connection.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "connect/http/request_head.hpp"
#include "responses.hpp"

namespace cproxy::proxy {
namespace {

enum class destination { own_page, service, foreign };

struct resolved {
  destination where;
  std::string name;  // the service name, or the foreign host
};

// Lowercases the Host, drops the port and a trailing dot, and classifies it.
resolved resolve(std::string_view host_header) {
  std::string host(host_header);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host == "localhost" || host == "127.0.0.1" || host == "[::1]") return {destination::own_page, {}};
  constexpr std::string_view suffix = ".localhost";
  if (host.size() > suffix.size() && host.ends_with(suffix)) {
    std::string name = host.substr(0, host.size() - suffix.size());
    if (const auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
    return {destination::service, name};
  }
  return {destination::foreign, host};
}

}  // namespace

coro::task<void> serve_connection(io::socket client, const connection_env* env) {
  std::string pending;
  std::byte chunk[16 * 1024];
  for (;;) {
    http::request_head head;
    std::size_t consumed = 0;
    http::parse_status status = http::parse_request_head(pending, head, consumed);
    while (status == http::parse_status::need_more) {
      // An idle keep-alive connection waits under the idle timeout, a started head under the header one.
      const io::duration limit = pending.empty() ? env->options->idle_timeout : env->options->header_timeout;
      const io::io_result r = co_await client.recv(chunk, limit);
      if (r.ec || r.bytes == 0) co_return;
      pending.append(reinterpret_cast<const char*>(chunk), r.bytes);
      status = http::parse_request_head(pending, head, consumed);
    }
    if (status != http::parse_status::complete) {
      const std::string answer =
          status == http::parse_status::too_large ? too_large_response() : bad_request_response();
      co_await client.send_all(std::as_bytes(std::span(answer)), env->options->header_timeout);
      co_return;
    }
    pending.erase(0, consumed);
    // Request bodies are not read yet (no upstreams to send them to): close after answering one.
    const bool keep_alive = head.keep_alive && !head.has_body;
    const resolved target = resolve(head.host);
    std::string answer;
    switch (target.where) {
      case destination::own_page:
        answer = own_page_response(*env->options, env->port, head.method == "HEAD", keep_alive);
        break;
      case destination::service:
        answer = not_found_response(target.name, keep_alive);
        break;
      case destination::foreign:
        answer = misdirected_response(target.name, keep_alive);
        break;
    }
    const io::io_result sent = co_await client.send_all(std::as_bytes(std::span(answer)), env->options->idle_timeout);
    if (sent.ec || !keep_alive) co_return;
  }
}

}  // namespace cproxy::proxy
