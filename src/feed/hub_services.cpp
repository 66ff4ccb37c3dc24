// Implementation of the pure pieces of connect/feed/route_feed.hpp: the hub's answer read into routes,
// and the line that says what changed between two tables. No I/O (the fuzz targets compile this alone).
#include <boost/json.hpp>

#include "connect/config/config_file.hpp"
#include "connect/config/json_text.hpp"
#include "connect/core/log_text.hpp"
#include "connect/feed/route_feed.hpp"  // declares what this file defines

namespace cproxy::control {
namespace json = boost::json;
namespace {

std::string entry_text(const route::route& r) {
  return r.name + " (" + r.upstream_text() + ", " + std::string(route::to_string(r.from)) + ")";
}

}  // namespace

hub_services_result parse_hub_services(std::string_view json_text) {
  hub_services_result out;
  if (json_text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    out.error = "the answer is empty";
    return out;
  }
  const std::optional<json::value> doc = json_text::parse_json(json_text, out.error);
  if (!doc) return out;
  const json::array* list = doc->if_array();
  if (!list) {
    out.error = "the answer must be a JSON array of services, not " + json_text::shown(*doc);
    return out;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json::value& item = (*list)[i];
    std::string label = "services[" + std::to_string(i) + "]";
    const json::object* o = item.if_object();
    if (!o) {
      out.warnings.push_back(label + " skipped: it must be an object, not " + json_text::shown(item));
      continue;
    }
    const json::value* name = o->if_contains("name");
    if (name && name->is_string()) label += " (\"" + log::escaped(name->get_string()) + "\")";
    const json::value* port = o->if_contains("tunnelPort");
    if (!port || port->is_null()) continue;  // a service without a tunnel: nothing to route to
    if (!name || !name->is_string() || !is_route_name(name->get_string(), true)) {
      out.warnings.push_back(label + " skipped: \"name\" must be a name such as \"api\", not " +
                             (name ? json_text::shown(*name) : std::string("missing")));
      continue;
    }
    const auto n = json_text::whole_number(*port);
    if (!n || *n < 1 || *n > 65535) {
      out.warnings.push_back(label + " skipped: \"tunnelPort\" must be an integer from 1 to 65535, not " +
                             json_text::shown(*port));
      continue;
    }
    out.routes.push_back(route::route{json_text::lower(name->get_string()), "127.0.0.1",
                                      static_cast<std::uint16_t>(*n), route::source::hub});
  }
  return out;
}

std::string describe_route_changes(const route::table& before, const route::table& after) {
  const auto a = before.routes();
  const auto b = after.routes();
  std::vector<std::string> parts;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].name < b[j].name)) {
      parts.push_back("-" + a[i++].name);
    } else if (i == a.size() || b[j].name < a[i].name) {
      parts.push_back("+" + entry_text(b[j++]));
    } else {
      const route::route& x = a[i++];
      const route::route& y = b[j++];
      if (x.host != y.host || x.port != y.port || x.from != y.from) parts.push_back("~" + entry_text(y));
    }
  }
  if (parts.empty()) return {};
  std::string line = "routes: ";
  for (std::size_t k = 0; k < parts.size(); ++k) line += (k ? ", " : "") + parts[k];
  return line;
}

}  // namespace cproxy::control
