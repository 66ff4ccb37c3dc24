// Implementation of connect/route/table.hpp.
#include "connect/route/table.hpp"

#include <algorithm>
#include <cctype>

namespace cproxy::route {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

int rank(source s) noexcept {
  return static_cast<int>(s);
}

}  // namespace

std::string_view to_string(source s) noexcept {
  switch (s) {
    case source::hub:
      return "hub";
    case source::config:
      return "config";
    case source::reach:
      return "reach";
  }
  return "config";
}

std::string route::upstream_text() const {
  const std::string shown = host == "localhost" ? "127.0.0.1" : host;
  if (shown.find(':') != std::string::npos) return "[" + shown + "]:" + std::to_string(port);
  return shown + ":" + std::to_string(port);
}

table::table(std::vector<route> routes, std::vector<std::string> dev_domains) {
  for (route& r : routes) r.name = lower(r.name);
  // Sorting first keeps building linear-logarithmic (a search per route was quadratic: 60,000 routes
  // took seconds); the stable sort keeps the given order within a name, which decides among equal ranks.
  std::stable_sort(routes.begin(), routes.end(),
                   [](const route& a, const route& b) { return a.name < b.name; });
  routes_.reserve(routes.size());
  for (route& r : routes) {
    if (routes_.empty() || routes_.back().name != r.name) {
      routes_.push_back(std::move(r));
    } else if (rank(r.from) >= rank(routes_.back().from)) {
      routes_.back() = std::move(r);
    }
  }
  dev_domains_.push_back("localhost");
  for (const std::string& d : dev_domains) {
    std::string domain = lower(d);
    while (!domain.empty() && domain.front() == '.') domain.erase(0, 1);
    while (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (!domain.empty() && std::find(dev_domains_.begin(), dev_domains_.end(), domain) == dev_domains_.end())
      dev_domains_.push_back(std::move(domain));
  }
}

const route* table::find(std::string_view name) const noexcept {
  const std::string key = lower(name);
  auto it = std::lower_bound(routes_.begin(), routes_.end(), key,
                             [](const route& r, const std::string& k) { return r.name < k; });
  return it != routes_.end() && it->name == key ? &*it : nullptr;
}

std::string normalize_host(std::string_view host) {
  std::string h = lower(host);
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close != std::string::npos) h.resize(close + 1);
  } else if (const auto colon = h.rfind(':'); colon != std::string::npos && h.find(':') == colon) {
    h.resize(colon);  // one colon: host:port (a bare IPv6 address has several and keeps them)
  }
  if (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

resolution resolve(const table& t, std::string_view host, bool proxy_form) {
  const std::string h = normalize_host(host);
  if (h == "localhost" || h == "127.0.0.1" || h == "[::1]" || h == "::1")
    return {resolution::kind::own_page, nullptr, {}};

  for (const std::string& domain : t.dev_domains()) {
    if (h.size() <= domain.size() + 1 || !h.ends_with(domain) || h[h.size() - domain.size() - 1] != '.')
      continue;
    const std::string prefix = h.substr(0, h.size() - domain.size() - 1);
    if (const route* exact = t.find(prefix)) return {resolution::kind::service, exact, prefix};
    const std::string last =
        prefix.substr(prefix.rfind('.') == std::string::npos ? 0 : prefix.rfind('.') + 1);
    if (const route* r = t.find(last)) return {resolution::kind::service, r, last};
    return {resolution::kind::unknown_service, nullptr, last};
  }
  if (proxy_form) {
    const std::string first = h.substr(0, h.find('.'));
    if (const route* r = t.find(first)) return {resolution::kind::service, r, first};
    return {resolution::kind::unknown_service, nullptr, first};
  }
  return {resolution::kind::foreign_host, nullptr, h};
}

}  // namespace cproxy::route
