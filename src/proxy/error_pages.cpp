// Implementation of error_pages.hpp.
#include "error_pages.hpp"

#include "responses.hpp"

namespace cproxy::proxy {
namespace {

std::string page(unsigned status, std::string_view title, const std::string& body, bool retry) {
  std::string out = "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n";
  if (retry) out += "<meta http-equiv=\"refresh\" content=\"1\">\n";
  out += "<title>" + std::to_string(status) + " " + html_escape(title) + "</title>\n";
  out +=
      "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:48rem}"
      "code{background:#eee;padding:0 .2rem}</style>\n</head><body>\n";
  out += "<h1>" + html_escape(title) + "</h1>\n" + body;
  out += "<p><small>" + std::to_string(status) + " &middot; connect proxy</small></p>\n</body></html>\n";
  return out;
}

std::string url_of(const page_context& ctx, std::string_view name) {
  return std::string(ctx.options->tls ? "https://" : "http://") + std::string(name) +
         ".localhost:" + std::to_string(ctx.port);
}

bool iequals_prefix(std::string_view s, std::size_t at, std::string_view word) {
  if (s.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = s[at + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != word[i]) return false;
  }
  return true;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool wants_html(const http::request_head& head) {
  for (const http::field& f : head.fields) {
    if (!http::iequals(f.name, "accept")) continue;
    for (std::size_t i = 0; i < f.value.size(); ++i)
      if (iequals_prefix(f.value, i, "text/html")) return true;
  }
  return false;
}

std::string not_found_page(const page_context& ctx, std::string_view name) {
  std::string body = "<p>No service is named <code>" + html_escape(name) + "</code> here.</p>\n";
  if (ctx.routes->routes().empty()) {
    body += "<p>No services yet. Add one with: <code>connect reach &lt;service&gt;</code></p>\n";
  } else {
    body += "<p>Available:</p>\n<ul>\n";
    for (const route::route& r : ctx.routes->routes()) {
      const std::string url = html_escape(url_of(ctx, r.name));
      body += "<li><a href=\"" + url + "/\">" + url + "</a></li>\n";
    }
    body += "</ul>\n";
  }
  return page(404, "Service not found", body, false);
}

std::string misdirected_page(std::string_view host, std::string_view message) {
  return page(421, "Misdirected Request",
              "<p>Host <code>" + html_escape(host) + "</code></p>\n<p>" + html_escape(message) + "</p>\n",
              false);
}

std::string loop_page(std::string_view route_name, std::string_view message) {
  return page(
      508, "Loop Detected",
      "<p>Service <code>" + html_escape(route_name) + "</code></p>\n<p>" + html_escape(message) + "</p>\n",
      false);
}

std::string gateway_error_page(unsigned status, std::string_view error, std::string_view service,
                               bool retry) {
  std::string body = "<p>Service <code>" + html_escape(service) + "</code>: " + html_escape(error) + "</p>\n";
  if (retry) body += "<p>This page reloads by itself every second and shows the app once it answers.</p>\n";
  return page(status, retry ? "The service is not responding yet" : error, body, retry);
}

}  // namespace cproxy::proxy
