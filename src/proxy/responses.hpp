// The proxy's own answers as HTTP/1.1 bytes: its page (HTML or the status object), and the JSON errors
// of the contract. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

#include "connect/inspect/store.hpp"
#include "connect/proxy/server.hpp"
#include "connect/route/table.hpp"

namespace cproxy::proxy {

struct page_context {
  const server_options* options;
  std::uint16_t port;
  const route::table* routes;
  const inspect::store* inspector = nullptr;  // the page starts with its list when set
};

std::string status_json(const page_context& ctx);
// `accept` is the request's Accept field: text/html gets the HTML page, anything else the status JSON.
std::string own_page_response(const page_context& ctx, std::string_view accept, bool head_only,
                              bool keep_alive);

// `html`: a browser navigation (wants_html in error_pages.hpp) gets the same status and facts as an HTML
// page; every other client the JSON of the contract.
std::string not_found_response(const page_context& ctx, std::string_view name, bool keep_alive,
                               bool html = false);
std::string misdirected_response(std::string_view host, bool keep_alive, bool html = false);
std::string loop_response(std::string_view route_name, std::string_view trail, std::uint16_t port,
                          bool html = false);
// reason "" = not responding (its HTML page reloads itself until the service answers)
std::string bad_gateway_response(std::string_view service, std::string_view reason, bool html = false);
std::string gateway_timeout_response(std::string_view service, bool html = false);
std::string bad_request_response();
std::string too_large_response();
std::string body_too_large_response(std::uint64_t limit);
std::string connect_established_response();
// An answer of the inspector's API (status, its reason phrase, the type and body, more header lines).
std::string inspector_response(unsigned status, std::string_view content_type, const std::string& body,
                               bool keep_alive, std::string_view extra_headers = {}, bool head_only = false);
// A plain HTTP request on the HTTPS port: 308 to the same authority and target over https.
std::string https_redirect_response(std::string_view authority, std::string_view target);

}  // namespace cproxy::proxy
