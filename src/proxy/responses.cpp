// Implementation of responses.hpp with Boost.JSON.
#include "responses.hpp"

#include <unistd.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "connect/io/backend.hpp"

namespace cproxy::proxy {
namespace {

std::string response(int status, std::string_view reason, std::string_view content_type, const std::string& body,
                     bool head_only, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += "x-private-connect-proxy: 1\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

std::string json_error(int status, std::string_view reason, boost::json::object body, bool keep_alive) {
  return response(status, reason, "application/json", boost::json::serialize(body), false, keep_alive);
}

}  // namespace

std::string status_json(const server_options& options, std::uint16_t port) {
  boost::json::object o;
  o["running"] = true;
  o["pid"] = static_cast<std::int64_t>(::getpid());
  o["port"] = port;
  o["tls"] = false;
  o["startedAt"] = options.started_at;
  o["version"] = options.version;
  o["io"] = std::string(io::to_string(options.io));
  o["routes"] = boost::json::array();
  return boost::json::serialize(o);
}

std::string own_page_response(const server_options& options, std::uint16_t port, bool head_only, bool keep_alive) {
  return response(200, "OK", "application/json", status_json(options, port), head_only, keep_alive);
}

std::string not_found_response(std::string_view subdomain, bool keep_alive) {
  boost::json::object o;
  o["error"] = "Service not found";
  o["subdomain"] = subdomain;
  o["available"] = boost::json::array();
  o["hint"] = "No services yet. Add one with: connect reach <service>";
  return json_error(404, "Not Found", std::move(o), keep_alive);
}

std::string misdirected_response(std::string_view host, bool keep_alive) {
  boost::json::object o;
  o["error"] = "Misdirected Request";
  o["host"] = host;
  o["message"] = "This proxy serves *.localhost names only; use it as an HTTP proxy for other hosts.";
  return json_error(421, "Misdirected Request", std::move(o), keep_alive);
}

std::string bad_request_response() {
  boost::json::object o;
  o["error"] = "Bad Request";
  o["message"] = "The request is not valid HTTP/1.1.";
  return json_error(400, "Bad Request", std::move(o), false);
}

std::string too_large_response() {
  boost::json::object o;
  o["error"] = "Request Header Fields Too Large";
  o["message"] = "The request head exceeds 64 KiB.";
  return json_error(431, "Request Header Fields Too Large", std::move(o), false);
}

}  // namespace cproxy::proxy
