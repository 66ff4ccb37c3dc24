// Implementation of connect/http/rewrite.hpp.
#include "connect/http/rewrite.hpp"

#include <boost/url/parse.hpp>
#include <charconv>
#include <vector>

namespace cproxy::http {
namespace {

// Fields the proxy always drops from a request: hop-by-hop ones, and those it sets itself.
bool dropped_request_field(std::string_view name, bool upgrading) {
  static constexpr std::string_view always[] = {"connection",
                                                "keep-alive",
                                                "proxy-connection",
                                                "te",
                                                "x-forwarded-for",
                                                "x-forwarded-proto",
                                                "x-forwarded-host",
                                                "x-forwarded-port",
                                                "forwarded",
                                                "x-private-connect-proxy",
                                                "x-private-connect-route",
                                                "proxy-authorization"};
  for (const std::string_view n : always)
    if (iequals(name, n)) return true;
  if (!upgrading && iequals(name, "upgrade")) return true;
  // A name with an underscore may be read as the same as its dashed twin by some frameworks (CGI-style
  // environments): drop it rather than let a client smuggle X_Forwarded_For past the rewrite.
  return name.find('_') != std::string_view::npos;
}

// A field named in a Connection header is hop-by-hop too, except those that frame or route the
// message: a client listing Content-Length there must not get its body read as a second request.
bool listed_in_connection(const std::vector<field>& fields, std::string_view name) {
  if (iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "host"))
    return false;
  for (const field& f : fields)
    if (iequals(f.name, "connection") && has_token(f.value, name)) return true;
  return false;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

// The target in origin-form (path and query), appended to `out`.
void append_origin_form(std::string& out, const request_head& head) {
  if (!head.absolute_form) {
    out += head.target;
    return;
  }
  const auto uri = boost::urls::parse_absolute_uri(head.target);
  const std::string_view path = uri ? std::string_view(uri->encoded_path()) : std::string_view();
  out += path.empty() ? std::string_view("/") : path;
  if (uri && uri->has_query()) {
    out += '?';
    out += uri->encoded_query();
  }
}

}  // namespace

hop_trail follow_trail(const request_head& head, std::string_view route_name) {
  hop_trail t;
  for (const field& f : head.fields) {
    if (iequals(f.name, "x-private-connect-proxy")) {
      unsigned seen = 0;
      const auto [end, ec] = std::from_chars(f.value.data(), f.value.data() + f.value.size(), seen);
      if (ec == std::errc{} && end == f.value.data() + f.value.size())
        t.hops = seen >= max_hops ? max_hops : seen + 1;
    } else if (iequals(f.name, "x-private-connect-route")) {
      if (has_token(f.value, route_name)) t.loop = true;
      if (!t.routes.empty()) t.routes += ',';
      t.routes += f.value;
    }
  }
  if (t.hops >= max_hops) t.loop = true;
  if (!t.routes.empty()) t.routes += ',';
  t.routes += route_name;
  return t;
}

void forward_request_head(const request_head& head, const forward_context& ctx, const hop_trail& trail,
                          std::string& out) {
  out.clear();
  out.reserve(512);
  out += head.method;
  out += ' ';
  append_origin_form(out, head);
  out += head.version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  const bool upgrading = head.upgrade_websocket;
  bool has_host = false;
  for (const field& f : head.fields) {
    if (dropped_request_field(f.name, upgrading)) continue;
    if (listed_in_connection(head.fields, f.name) && !(upgrading && iequals(f.name, "upgrade"))) continue;
    if (iequals(f.name, "host")) has_host = true;
    append_field(out, f.name, f.value);
  }
  if (!has_host) append_field(out, "Host", head.authority);
  if (upgrading) append_field(out, "Connection", "upgrade");
  append_field(out, "X-Forwarded-For", ctx.client_address);
  append_field(out, "X-Forwarded-Proto", ctx.scheme);
  append_field(out, "X-Forwarded-Host", head.host.empty() ? head.authority : head.host);
  append_field(out, "X-Forwarded-Port", std::to_string(ctx.proxy_port));
  append_field(out, "x-private-connect-proxy", std::to_string(trail.hops));
  append_field(out, "x-private-connect-route", trail.routes);
  out += "\r\n";
}

void client_response_head(const response_head& head, bool keep_alive, bool unchunked, std::string& out) {
  out.clear();
  out.reserve(512);
  out += "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason;
  out += "\r\n";
  const bool upgrade = head.status == 101;
  for (const field& f : head.fields) {
    if (upgrade && (iequals(f.name, "connection") || iequals(f.name, "upgrade"))) {
      append_field(out, f.name, f.value);
      continue;
    }
    if (iequals(f.name, "connection") || iequals(f.name, "keep-alive") ||
        iequals(f.name, "proxy-connection") || iequals(f.name, "upgrade") ||
        iequals(f.name, "x-private-connect-proxy") ||
        (unchunked && (iequals(f.name, "transfer-encoding") || iequals(f.name, "trailer"))) ||
        listed_in_connection(head.fields, f.name))
      continue;
    append_field(out, f.name, f.value);
  }
  append_field(out, "x-private-connect-proxy", "1");
  if (!upgrade && head.status >= 200) append_field(out, "Connection", keep_alive ? "keep-alive" : "close");
  out += "\r\n";
}

}  // namespace cproxy::http
