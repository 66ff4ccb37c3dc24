// The proxy's errors as small HTML pages for people (browser navigations, `Accept: text/html`): the
// same facts as the JSON bodies of responses.hpp, self-contained (no outside resources), every name
// HTML-escaped (a route name or Host comes from whoever sent the request). Pure: bodies only, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "connect/http/head.hpp"

namespace cproxy::proxy {

struct page_context;

// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
std::string html_escape(std::string_view s);

// A browser navigation: the request's Accept names text/html. Every other client (curl's */*, fetch())
// keeps the JSON.
bool wants_html(const http::request_head& head);

std::string not_found_page(const page_context& ctx, std::string_view name);
std::string misdirected_page(std::string_view host, std::string_view message);
std::string loop_page(std::string_view route_name, std::string_view message);
// `error` is the JSON's "error" text. `retry`: the page reloads itself every second, so the app
// appears once its service answers (a refused upstream: "not responding yet").
std::string gateway_error_page(unsigned status, std::string_view error, std::string_view service, bool retry);

}  // namespace cproxy::proxy
