// Implementation of connect/config/settings.hpp.
#include "connect/config/settings.hpp"

#include <cstdio>
#include <cstdlib>

#include "connect/config/config_file.hpp"

namespace cproxy::control {
namespace {
io::duration seconds(unsigned s) {
  return io::duration{std::int64_t{s} * 1000};
}

// CONNECT_PROXY_HOLD_WINDOWS="ANSWERED_MS,APPEARED_MS" shortens the 5 minutes / 30 s of the holding rule
// so that a test can see an upstream fall out of it; not a user setting (the contract fixes them).
void read_hold_windows(proxy::timeouts& t) {
  const char* env = std::getenv("CONNECT_PROXY_HOLD_WINDOWS");
  if (!env || !*env) return;
  unsigned long long answered = 0, appeared = 0;
  if (std::sscanf(env, "%llu,%llu", &answered, &appeared) != 2) return;
  t.hold_answered = io::duration{static_cast<std::int64_t>(answered)};
  t.hold_appeared = io::duration{static_cast<std::int64_t>(appeared)};
}
}  // namespace

std::string resolve_settings(const proxy_options& options, settings& out,
                             std::vector<std::string>& warnings) {
  out.home = home_folder();
  const bool strict = options.config_path.has_value();
  const std::string path = strict ? *options.config_path : out.home + "/config.json";
  config_result read = read_config_file(path, strict);
  if (!read.error.empty()) return read.error;
  warnings = std::move(read.warnings);
  const config& file = *read.value;

  out.port = options.port ? *options.port : file.port.value_or(3456);
  out.bind = options.bind ? *options.bind : file.bind.value_or("127.0.0.1");
  out.hub = options.hub ? *options.hub : file.hub_url.value_or("https://hub.privateconnect.co");
  out.domains = file.domains;
  out.domains.insert(out.domains.end(), options.domains.begin(), options.domains.end());
  out.quiet = options.quiet || file.quiet.value_or(false);
  // A custom pair and trusting the CA only make sense over TLS: --cert/--key and --trust imply --https.
  out.https = options.https || options.cert.has_value() || options.key.has_value() || options.trust ||
              file.https.value_or(false);
  if (file.timeouts.header) out.timeouts.header = seconds(*file.timeouts.header);
  if (file.timeouts.connect) out.timeouts.connect = seconds(*file.timeouts.connect);
  if (file.timeouts.idle) out.timeouts.idle = seconds(*file.timeouts.idle);
  if (file.timeouts.response) out.timeouts.response = seconds(*file.timeouts.response);
  if (file.timeouts.tunnel_idle) out.timeouts.tunnel_idle = seconds(*file.timeouts.tunnel_idle);
  if (file.timeouts.hold) out.timeouts.hold = seconds(*file.timeouts.hold);
  read_hold_windows(out.timeouts);
  out.config_routes = file.routes;
  if (file.inspect.enabled) out.inspect.enabled = *file.inspect.enabled;
  if (file.inspect.requests) out.inspect.requests = *file.inspect.requests;
  if (file.inspect.body_bytes) out.inspect.body_bytes = *file.inspect.body_bytes;
  return {};
}

}  // namespace cproxy::control
