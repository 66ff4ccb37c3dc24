// route::table: the immutable route snapshot the data path reads. The control plane builds a new one
// whenever a source changes and publishes it (published<table>); workers look names up without locks.
// Pure: no I/O. Lookup rules are the contract's "Routes" section (docs/architecture.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cproxy::route {

// Where a route came from, lowest precedence first.
enum class source { hub, config, reach };
std::string_view to_string(source s) noexcept;  // "hub", "config", "reach"

struct route {
  std::string name;  // lowercase
  std::string host;  // "localhost" (dial 127.0.0.1, then ::1), or a numeric address
  std::uint16_t port = 0;
  source from = source::config;

  std::string upstream_text() const;  // "127.0.0.1:8080" for localhost, else "host:port"
};

class table {
 public:
  // Later entries of the same name (case-insensitive) win when their source ranks higher; among equal
  // sources the later one wins. `dev_domains` are suffixes like "test" (for NAME.test), besides localhost.
  explicit table(std::vector<route> routes = {}, std::vector<std::string> dev_domains = {});

  const route* find(std::string_view name) const noexcept;            // case-insensitive
  std::span<const route> routes() const noexcept { return routes_; }  // sorted by name
  std::span<const std::string> dev_domains() const noexcept { return dev_domains_; }

 private:
  std::vector<route> routes_;
  std::vector<std::string> dev_domains_;  // lowercase, without dots at the ends; "localhost" first
};

// What a request's host names, by the contract's lookup rules.
struct resolution {
  enum class kind {
    own_page,         // bare localhost, 127.0.0.1 or [::1]
    service,          // `route` is set
    unknown_service,  // a dev-domain name no route has; `name` is what was looked up
    foreign_host,     // another host on an ordinary request: 421; `name` is the normalized host
  };
  kind what = kind::foreign_host;
  const route* target = nullptr;
  std::string name;
};

// `host` is the Host header or the authority of an absolute-form / CONNECT target. `proxy_form` is
// true when the client chose us as its proxy (CONNECT, absolute-form): other hosts then route by their
// first label instead of getting 421.
resolution resolve(const table& t, std::string_view host, bool proxy_form);

// Lowercases, drops the port and a trailing dot: "API.localhost.:3456" -> "api.localhost".
std::string normalize_host(std::string_view host);

}  // namespace cproxy::route
