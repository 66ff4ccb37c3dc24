// Implementation of failure_answer.hpp: every status and reason text of a failed exchange comes from here.
#include "failure_answer.hpp"

#include "responses.hpp"

namespace cproxy::proxy {
namespace {

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

}  // namespace

failure_answer answer_for(const failure& f, const route::route* route, std::string_view client_ip,
                          std::uint64_t max_body, bool html) {
  const std::string_view name = route ? std::string_view(route->name) : std::string_view("-");
  failure_answer a;
  switch (f.kind) {
    case failure_kind::client_gone:
      return a;  // nobody to answer, nothing worth a line
    case failure_kind::bad_request:
      a = {400, bad_request_response(), concat({"400 from ", client_ip, ": ", f.detail})};
      break;
    case failure_kind::head_too_large:
      a = {431, too_large_response(), concat({"431 from ", client_ip, ": request head over 64 KiB"})};
      break;
    case failure_kind::body_too_large:
      a = {413, body_too_large_response(max_body),
           concat({"413 from ", client_ip, ": body over --max-body"})};
      break;
    case failure_kind::refused:
      a = {502, bad_gateway_response(name, "", html),
           f.logged ? std::string()
                    : concat({"502 ", name, ": ", route ? route->upstream_text() : "",
                              " refused the connection"})};
      break;
    case failure_kind::connect_timeout:
      a = {504, gateway_timeout_response(name, html),
           concat({"504 ", name, ": connecting to ", route ? route->upstream_text() : "", " timed out"})};
      break;
    case failure_kind::response_timeout:
      a = {504, gateway_timeout_response(name, html), concat({"504 ", name, ": ", f.detail})};
      break;
    case failure_kind::upstream_closed:
      a = {502, bad_gateway_response(name, "the service closed the connection.", html),
           concat({"502 ", name, ": the service closed the connection"})};
      break;
    case failure_kind::upstream_stalled:
      a = {502, bad_gateway_response(name, "the service stopped reading the request.", html),
           concat({"502 ", name, ": the service stopped reading the request"})};
      break;
    case failure_kind::invalid_response:
      a = {502, bad_gateway_response(name, "the service sent an invalid response.", html),
           concat({"502 ", name, ": invalid response: ", f.detail})};
      break;
    case failure_kind::unreachable:
      a = {502, bad_gateway_response(name, f.detail, html), concat({"502 ", name, ": ", f.detail})};
      break;
    case failure_kind::route_gone:
      a = {404, f.answer, {}};  // like the 404 of a name never routed: no line of its own
      break;
  }
  if (f.response_started) {
    // Closing is all that is left; an upstream that broke off its own response is still worth a line.
    const bool upstream = f.source == failure_source::upstream;
    return failure_answer{
        0, {}, upstream ? concat({name, ": the response broke off: ", f.detail}) : std::string{}};
  }
  return a;
}

}  // namespace cproxy::proxy
