// The resolve_route stage: the request's Host (or its proxy-form authority) against this request's
// route snapshot. Answers the proxy's own page, 404, 421, 508 and an announced 413 itself.
#include "connect/core/log.hpp"
#include "error_pages.hpp"
#include "responses.hpp"
#include "stages.hpp"

namespace cproxy::proxy {
namespace {

const http::field* find_field(const http::request_head& head, std::string_view name) {
  for (const http::field& f : head.fields)
    if (http::iequals(f.name, name)) return &f;
  return nullptr;
}

}  // namespace

route_decision resolve_route(client_side* c, exchange* ex) {
  const http::request_head& head = *ex->request;
  ex->routes = c->w->routes.hold();  // this request's snapshot, kept alive until the exchange ends
  const page_context page{c->env->options, c->env->port, ex->routes.get(), c->env->inspector};
  const bool proxy_form = head.is_connect() || head.absolute_form;
  const route::resolution where =
      route::resolve(*ex->routes, proxy_form ? head.authority : head.host, proxy_form);
  const bool keep = head.keep_alive && head.body == http::framing::none && !c->w->draining;
  const bool html = wants_html(head);  // a browser navigation gets the errors as HTML pages

  switch (where.what) {
    case route::resolution::kind::own_page: {
      if (head.is_connect()) return {nullptr, 404, not_found_response(page, "localhost", false), false, {}};
      const http::field* accept = find_field(head, "accept");
      return {nullptr, 200, own_page_response(page, accept ? accept->value : "", head.method == "HEAD", keep),
              keep,    {},  true};
    }
    case route::resolution::kind::unknown_service:
      return {nullptr, 404, not_found_response(page, where.name, keep, html), keep, {}};
    case route::resolution::kind::foreign_host:
      return {nullptr, 421, misdirected_response(where.name, keep, html), keep, {}};
    case route::resolution::kind::service:
      break;
  }

  const route::route* r = where.target;
  if (head.is_connect()) return {r, 0, {}, false, {}};
  const std::uint64_t max_body = c->env->options->max_body;
  if (max_body > 0 && head.body == http::framing::length && head.content_length > max_body)
    return {nullptr, 413, body_too_large_response(max_body), false, {}};
  http::hop_trail trail = http::follow_trail(head, r->name);
  if (trail.loop) {
    log::info("508 ", r->name, ": loop, route trail ", trail.routes);
    return {nullptr, 508, loop_response(r->name, trail.routes, c->env->port, html), false, {}};
  }
  return {r, 0, {}, false, std::move(trail)};
}

}  // namespace cproxy::proxy
