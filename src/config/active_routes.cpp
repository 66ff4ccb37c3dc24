// Implementation of connect/config/active_routes.hpp.
#include "connect/config/active_routes.hpp"

#include <signal.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>

#include "connect/config/config_file.hpp"
#include "connect/config/json_text.hpp"
#include "connect/core/log_text.hpp"

namespace cproxy::control {
namespace json = boost::json;
namespace {

using json_text::lower;
using json_text::parse_json;
using json_text::shown;
using json_text::whole_number;

std::string must_be(std::string_view key, std::string_view expected, const json::value& got) {
  return "\"" + std::string(key) + "\" must be " + std::string(expected) + ", not " + shown(got);
}

// One entry into a route and its pid, or the reason it cannot be used.
struct entry {
  route::route r;
  int pid = 0;
};

std::optional<entry> read_entry(const json::value& v, std::string& why) {
  const json::object* o = v.if_object();
  if (!o) {
    why = "it must be an object, not " + shown(v);
    return std::nullopt;
  }
  entry e;
  e.r.from = route::source::reach;
  e.r.host = "localhost";

  const json::value* name = o->if_contains("serviceName");
  if (!name || name->is_null()) {
    why = "\"serviceName\" is missing";
    return std::nullopt;
  }
  if (!name->is_string() || !is_route_name(name->get_string(), true)) {
    why = must_be("serviceName", "a name of letters, digits, hyphens and underscores such as \"api\"", *name);
    return std::nullopt;
  }
  e.r.name = lower(name->get_string());

  const json::value* port = o->if_contains("localPort");
  if (!port || port->is_null()) {
    why = "\"localPort\" is missing";
    return std::nullopt;
  }
  const auto port_number = whole_number(*port);
  if (!port_number || *port_number < 1 || *port_number > 65535) {
    why = must_be("localPort", "an integer from 1 to 65535", *port);
    return std::nullopt;
  }
  e.r.port = static_cast<std::uint16_t>(*port_number);

  if (const json::value* pid = o->if_contains("pid"); pid && !pid->is_null()) {
    const auto n = whole_number(*pid);
    if (!n || *n < 0 || *n > INT_MAX) {
      why = must_be("pid", "an integer from 0 to " + std::to_string(INT_MAX), *pid);
      return std::nullopt;
    }
    e.pid = static_cast<int>(*n);
  }

  if (const json::value* host = o->if_contains("host");
      host && !host->is_null() && !(host->is_string() && host->get_string().empty())) {
    const auto h = host->is_string() ? upstream_host(host->get_string()) : std::nullopt;
    if (!h) {
      why = must_be("host", "\"localhost\" or an IP address", *host);
      return std::nullopt;
    }
    e.r.host = *h;
  }
  return e;
}

// The names more than one usable entry holds, warned in one line however many there are. The last entry
// of a name applies, as route::table has it: the contract lets the later word stand (each source over
// the one before it), and a tool that registers a service again appends it, so the last is the newest.
// `file_index[k]` is the position in the file of `routes[k]`.
std::optional<std::string> repeated_names(const std::vector<route::route>& routes,
                                          const std::vector<std::size_t>& file_index) {
  // Sorted by name, stable so that the entries of a name stay in file order: n log n, one allocation.
  std::vector<std::size_t> order(routes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return routes[a].name < routes[b].name; });
  struct group {
    std::size_t first, last, count;  // positions in `routes`
  };
  std::vector<group> repeated;
  for (std::size_t k = 0; k < order.size();) {
    std::size_t end = k + 1;
    while (end < order.size() && routes[order[end]].name == routes[order[k]].name) ++end;
    if (end - k > 1) repeated.push_back({order[k], order[end - 1], end - k});
    k = end;
  }
  if (repeated.empty()) return std::nullopt;
  std::sort(repeated.begin(), repeated.end(),
            [](const group& a, const group& b) { return a.first < b.first; });
  constexpr std::size_t named = 5;
  std::string line =
      "names used by more than one entry (names match case-insensitively; the last entry applies): ";
  for (std::size_t k = 0; k < repeated.size() && k < named; ++k) {
    const group& g = repeated[k];
    line += (k ? ", \"" : "\"") + log::escaped(routes[g.first].name) + "\" in " + std::to_string(g.count) +
            " entries (routes[" + std::to_string(file_index[g.last]) + "] applies)";
  }
  if (repeated.size() > named) line += ", and " + std::to_string(repeated.size() - named) + " more names";
  return line;
}

}  // namespace

active_routes_result parse_active_routes(std::string_view json_text,
                                         const std::function<bool(int pid)>& pid_alive) {
  active_routes_result out;
  const std::optional<json::value> doc = parse_json(json_text, out.error);
  if (!doc) return out;
  const json::object* top = doc->if_object();
  if (!top) {
    out.error = "the top level must be a JSON object, not " + shown(*doc);
    return out;
  }
  // A future format may mean something else by the same fields: better the last good table than a guess.
  if (const json::value* version = top->if_contains("version"); version && !version->is_null()) {
    if (whole_number(*version) != 1) {
      out.error = "unsupported \"version\" " + shown(*version) + ": this build reads version 1";
      return out;
    }
  }
  const json::value* routes = top->if_contains("routes");
  if (!routes || routes->is_null()) {
    out.error = "\"routes\" is missing";
    return out;
  }
  const json::array* list = routes->if_array();
  if (!list) {
    out.error = must_be("routes", "an array", *routes);
    return out;
  }
  std::vector<std::size_t> file_index;  // of each route in `out.routes`
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string why;
    std::optional<entry> e = read_entry((*list)[i], why);
    if (!e) {
      std::string label = "routes[" + std::to_string(i) + "]";
      if (const json::object* o = (*list)[i].if_object())
        if (const json::value* name = o->if_contains("serviceName"); name && name->is_string())
          label += " (\"" + log::escaped(name->get_string()) + "\")";  // the file's text: one log line
      out.warnings.push_back(label + " skipped: " + why);
      continue;
    }
    if (e->pid > 0 && !pid_alive(e->pid)) continue;
    file_index.push_back(i);
    out.routes.push_back(std::move(e->r));
  }
  if (std::optional<std::string> line = repeated_names(out.routes, file_index))
    out.warnings.push_back(std::move(*line));
  return out;
}

active_routes_result read_active_routes(const std::string& path) {
  const std::string prefix = "active routes file " + path + ": ";
  std::string text;
  if (const int err = read_small_file(path, text, max_route_file_bytes, links::refuse); err != 0) {
    active_routes_result out;
    if (err != ENOENT) out.error = prefix + "cannot read: " + std::strerror(err);
    return out;
  }
  active_routes_result out = parse_active_routes(text, process_alive);
  if (!out.error.empty()) out.error = prefix + out.error;
  for (std::string& w : out.warnings) w = prefix + w;
  return out;
}

bool process_alive(int pid) {
  // pid 0 and negatives would signal process groups: never "alive" as a single process.
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace cproxy::control
