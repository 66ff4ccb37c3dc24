// Implementation of responses.hpp with Boost.JSON.
#include "responses.hpp"

#include <unistd.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "connect/inspect/render.hpp"
#include "connect/io/backend.hpp"
#include "error_pages.hpp"

namespace cproxy::proxy {

extern const std::string_view inspector_page;  // src/proxy/page/inspector.html, embedded at build time

namespace {

std::string response(int status, std::string_view reason, std::string_view content_type,
                     const std::string& body, bool head_only, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\n";
  out += "x-private-connect-proxy: 1\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

std::string json_response(int status, std::string_view reason, const boost::json::object& body,
                          bool keep_alive) {
  return response(status, reason, "application/json", boost::json::serialize(body), false, keep_alive);
}

std::string html_response(int status, std::string_view reason, const std::string& page, bool keep_alive) {
  return response(status, reason, "text/html; charset=utf-8", page, false, keep_alive);
}

std::string url_of(const page_context& ctx, std::string_view name) {
  return std::string(ctx.options->tls ? "https://" : "http://") + std::string(name) +
         ".localhost:" + std::to_string(ctx.port);
}

// The page is src/proxy/page/inspector.html with the routes and a line about this proxy put in.
std::string html_page(const page_context& ctx) {
  std::string rows;
  for (const route::route& r : ctx.routes->routes()) {
    const std::string url = html_escape(url_of(ctx, r.name));
    rows += "<tr><td><a href=\"" + url + "/\">" + url + "</a></td><td>" + html_escape(r.upstream_text()) +
            "</td><td>" + std::string(route::to_string(r.from)) + "</td></tr>\n";
  }
  if (rows.empty())
    rows = "<tr><td colspan=\"3\">No routes yet. Add one with: connect reach &lt;service&gt;</td></tr>\n";
  const std::string meta = "Port " + std::to_string(ctx.port) + " &middot; io " +
                           std::string(io::to_string(ctx.options->io)) + " &middot; version " +
                           html_escape(ctx.options->version);
  // The list as it is now, so the page shows it as soon as it loads (then the events keep it current).
  std::string initial = ctx.inspector ? inspect::list_json(ctx.inspector->list({})) : std::string("null");
  // No '<' at all inside the script element: "</script" would end it and "<!--" would change how the
  // HTML parser reads the rest. \u003c is the same character to JSON and to JavaScript.
  for (std::size_t at = initial.find('<'); at != std::string::npos; at = initial.find('<', at + 6))
    initial.replace(at, 1, "\\u003c");
  std::string page(inspector_page);
  for (const auto& [mark, text] :
       {std::pair<std::string_view, const std::string&>{"<!--META-->", meta},
        std::pair<std::string_view, const std::string&>{"<!--ROUTES-->", rows},
        std::pair<std::string_view, const std::string&>{"/*INITIAL*/null", initial}}) {
    const std::size_t at = page.find(mark);
    if (at != std::string::npos) page.replace(at, mark.size(), text);
  }
  return page;
}

}  // namespace

std::string status_json(const page_context& ctx) {
  boost::json::object o;
  o["running"] = true;
  o["pid"] = static_cast<std::int64_t>(::getpid());
  o["port"] = ctx.port;
  o["tls"] = ctx.options->tls != nullptr;
  o["startedAt"] = ctx.options->started_at;
  o["version"] = ctx.options->version;
  o["io"] = std::string(io::to_string(ctx.options->io));
  o["protocols"] = boost::json::array{"http/1.1", "h2"};  // h2: ALPN on HTTPS, prior knowledge on HTTP
  boost::json::array routes;
  for (const route::route& r : ctx.routes->routes()) {
    boost::json::object entry;
    entry["name"] = r.name;
    entry["url"] = url_of(ctx, r.name);
    entry["upstream"] = r.upstream_text();
    entry["source"] = std::string(route::to_string(r.from));
    routes.push_back(std::move(entry));
  }
  o["routes"] = std::move(routes);
  return boost::json::serialize(o);
}

std::string own_page_response(const page_context& ctx, std::string_view accept, bool head_only,
                              bool keep_alive) {
  if (accept.find("text/html") != std::string_view::npos)
    return response(200, "OK", "text/html; charset=utf-8", html_page(ctx), head_only, keep_alive);
  return response(200, "OK", "application/json", status_json(ctx), head_only, keep_alive);
}

std::string not_found_response(const page_context& ctx, std::string_view name, bool keep_alive, bool html) {
  if (html) return html_response(404, "Not Found", not_found_page(ctx, name), keep_alive);
  boost::json::object o;
  o["error"] = "Service not found";
  o["subdomain"] = name;
  boost::json::array available;
  for (const route::route& r : ctx.routes->routes()) available.push_back(boost::json::string(r.name));
  o["available"] = std::move(available);
  o["hint"] = ctx.routes->routes().empty()
                  ? std::string("No services yet. Add one with: connect reach <service>")
                  : "Try: " + url_of(ctx, ctx.routes->routes().front().name);
  return json_response(404, "Not Found", o, keep_alive);
}

std::string misdirected_response(std::string_view host, bool keep_alive, bool html) {
  const std::string message = "This proxy answers NAME.localhost only. To reach " + std::string(host) +
                              " through it, use it as an HTTP proxy (curl -x).";
  if (html) return html_response(421, "Misdirected Request", misdirected_page(host, message), keep_alive);
  boost::json::object o;
  o["error"] = "Misdirected Request";
  o["host"] = host;
  o["message"] = message;
  return json_response(421, "Misdirected Request", o, keep_alive);
}

std::string loop_response(std::string_view route_name, std::string_view trail, std::uint16_t port,
                          bool html) {
  const std::string message =
      "The request for '" + std::string(route_name) +
      "' came back through the proxy (route trail: " + std::string(trail) +
      "). A dev server proxies to http://" + std::string(route_name) + ".localhost:" + std::to_string(port) +
      ", which routes to that dev server again: point its proxy setting at the service's own port.";
  if (html) return html_response(508, "Loop Detected", loop_page(route_name, message), false);
  boost::json::object o;
  o["error"] = "Loop Detected";
  o["message"] = message;
  return json_response(508, "Loop Detected", o, false);
}

std::string bad_gateway_response(std::string_view service, std::string_view reason, bool html) {
  const std::string error = reason.empty() ? std::string("Bad Gateway: the service is not responding.")
                                           : "Bad Gateway: " + std::string(reason);
  if (html)
    return html_response(502, "Bad Gateway", gateway_error_page(502, error, service, reason.empty()), false);
  boost::json::object o;
  o["error"] = error;
  o["service"] = service;
  return json_response(502, "Bad Gateway", o, false);
}

std::string gateway_timeout_response(std::string_view service, bool html) {
  const std::string_view error = "Gateway Timeout: the service did not answer in time.";
  if (html)
    return html_response(504, "Gateway Timeout", gateway_error_page(504, error, service, false), false);
  boost::json::object o;
  o["error"] = error;
  o["service"] = service;
  return json_response(504, "Gateway Timeout", o, false);
}

std::string bad_request_response() {
  boost::json::object o;
  o["error"] = "Bad Request";
  o["message"] = "The request is not valid HTTP/1.1.";
  return json_response(400, "Bad Request", o, false);
}

std::string too_large_response() {
  boost::json::object o;
  o["error"] = "Request Header Fields Too Large";
  o["message"] = "The request head exceeds 64 KiB.";
  return json_response(431, "Request Header Fields Too Large", o, false);
}

std::string body_too_large_response(std::uint64_t limit) {
  boost::json::object o;
  o["error"] = "Payload Too Large";
  o["message"] =
      "The request body exceeds this proxy's limit of " + std::to_string(limit) + " bytes (--max-body).";
  return json_response(413, "Payload Too Large", o, false);
}

std::string https_redirect_response(std::string_view authority, std::string_view target) {
  const std::string location =
      "https://" + std::string(authority) + std::string(target.empty() ? "/" : target);
  std::string out = "HTTP/1.1 308 Permanent Redirect\r\nLocation: " + location + "\r\n";
  out += "Content-Length: 0\r\nx-private-connect-proxy: 1\r\nConnection: close\r\n\r\n";
  return out;
}

std::string inspector_response(unsigned status, std::string_view content_type, const std::string& body,
                               bool keep_alive, std::string_view extra_headers, bool head_only) {
  std::string_view reason = "OK";
  switch (status) {
    case 403:
      reason = "Forbidden";
      break;
    case 404:
      reason = "Not Found";
      break;
    case 405:
      reason = "Method Not Allowed";
      break;
    case 409:
      reason = "Conflict";
      break;
    case 413:
      reason = "Payload Too Large";
      break;
    case 502:
      reason = "Bad Gateway";
      break;
    default:
      break;
  }
  std::string out = response(static_cast<int>(status), reason, content_type, body, head_only, keep_alive);
  if (!extra_headers.empty()) out.insert(out.find("\r\n") + 2, extra_headers);
  return out;
}

std::string connect_established_response() {
  return "HTTP/1.1 200 Connection Established\r\n\r\n";
}

}  // namespace cproxy::proxy
