// The proxy's own answers as HTTP/1.1 bytes: its page (status object), and the JSON errors of the
// contract. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

#include "connect/proxy/server.hpp"

namespace cproxy::proxy {

std::string status_json(const server_options& options, std::uint16_t port);
std::string own_page_response(const server_options& options, std::uint16_t port, bool head_only, bool keep_alive);
std::string not_found_response(std::string_view subdomain, bool keep_alive);
std::string misdirected_response(std::string_view host, bool keep_alive);
std::string bad_request_response();
std::string too_large_response();

}  // namespace cproxy::proxy
