// Implementation of connect/daemon/current_routes.hpp. A route the status object names is read back
// from its "upstream" text; config and active-routes.json entries keep their own host ("localhost").
#include "connect/daemon/current_routes.hpp"

#include <boost/json.hpp>
#include <charconv>

#include "connect/config/active_routes.hpp"
#include "connect/config/settings.hpp"

namespace cproxy::control {
namespace {

std::optional<route::route> from_status_entry(const boost::json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const boost::json::object& o = v.as_object();
  const auto* name = o.if_contains("name");
  const auto* upstream = o.if_contains("upstream");
  const auto* source = o.if_contains("source");
  if (!name || !name->is_string() || !upstream || !upstream->is_string()) return std::nullopt;
  const std::string_view text = upstream->as_string();
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  route::route r;
  r.name = std::string(name->as_string());
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  r.host = std::string(host);
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    return std::nullopt;
  r.port = static_cast<std::uint16_t>(value);
  r.from = route::source::hub;
  if (source && source->is_string()) {
    if (source->as_string() == "config") r.from = route::source::config;
    if (source->as_string() == "reach") r.from = route::source::reach;
  }
  return r;
}

}  // namespace

std::vector<route::route> current_routes(const settings& s, const std::string& running_status) {
  std::vector<route::route> all;
  boost::json::error_code ec;
  const boost::json::value status =
      running_status.empty() ? boost::json::value() : boost::json::parse(running_status, ec);
  if (!ec && status.is_object()) {
    if (const auto* routes = status.as_object().if_contains("routes"); routes && routes->is_array())
      for (const auto& entry : routes->as_array())
        if (auto r = from_status_entry(entry)) all.push_back(std::move(*r));
  }
  all.insert(all.end(), s.config_routes.begin(), s.config_routes.end());
  const active_routes_result file = read_active_routes(s.home + "/active-routes.json");
  all.insert(all.end(), file.routes.begin(), file.routes.end());
  // The table applies the precedence and sorts; the running proxy's entries come first so that the
  // files' own entries (host "localhost", dialled on both loopbacks) win over their status echo.
  const route::table table(std::move(all), s.domains);
  return {table.routes().begin(), table.routes().end()};
}

}  // namespace cproxy::control
