// route_feed: keeps the published route table current while the proxy runs: watches active-routes.json and
// the pids in it, polls the hub, publishes the merged table (hub < config < file) when it changes. Runs on
// its own threads, never the workers' (the hub client on a control-plane io::context of its own). Not a
// config reloader: config routes are fixed at start.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connect/core/published.hpp"
#include "connect/io/backend.hpp"
#include "connect/route/table.hpp"

namespace cproxy::control {

struct settings;
struct proxy_options;

struct route_feed_config {
  std::string home;                         // active-routes.json lives here
  std::vector<route::route> config_routes;  // source::config
  std::vector<std::string> domains;         // dev domains, passed to every table built
  std::string hub_url;                      // http:// or https://
  std::optional<std::string> api_key;       // none: the hub is not polled

  // How active-routes.json is watched: inotify on its folder where the platform has it, else (or when
  // asked, for tests) by comparing stat() results.
  enum class watch_kind { automatic, polling };
  watch_kind watch = watch_kind::automatic;

  // The contract's periods; tests shorten them.
  std::chrono::milliseconds debounce{50};        // quiet time after a file event before reading
  std::chrono::milliseconds poll_interval{500};  // the polling watcher's stat() period
  std::chrono::milliseconds pid_interval{1000};  // liveness checks of pids that have no pidfd
  std::chrono::milliseconds hub_interval{10'000};
  std::chrono::milliseconds hub_timeout{5'000};  // one whole hub request, name lookup included
  // The hub client's io backend. Asio: always there, and one request per period needs no io_uring ring
  // (nor the probe that picks one); tests run the client on both.
  io::backend_kind hub_io = io::backend_kind::asio;
};

// The feed's configuration for what the proxy was started with. The API key comes from the same config
// file resolve_settings read (`--config`, else the home config.json).
route_feed_config feed_config(const settings& s, const proxy_options& options);

class route_feed {
 public:
  // `out` must outlive the feed. Nothing runs before start().
  route_feed(route_feed_config config, published<route::table>& out);
  ~route_feed();  // stop()s
  route_feed(const route_feed&) = delete;
  route_feed& operator=(const route_feed&) = delete;

  // Before start(): hub routes to begin with, the ones a --replace predecessor handed over. They stay
  // until the first usable hub answer replaces them, as the predecessor's would have.
  void seed_hub_routes(std::vector<route::route> routes);
  // Reads active-routes.json (synchronously: when start() returns, the published table holds the file's
  // routes and any seeded hub routes), then watches and polls on its own threads. Throws
  // std::system_error if a thread or an eventfd cannot be made.
  void start();
  // The hub routes as the last usable answer (or the seed) gave them: what a handover passes on.
  std::vector<route::route> hub_routes() const;
  const std::string& hub_url() const noexcept;
  bool polls_hub() const noexcept;  // an apiKey is configured
  // Ends the threads, a hub request in flight included (every operation on the hub's context is
  // cancelled; a name lookup in progress is left to finish alone). Never waits for the hub. Idempotent.
  void stop();

  struct state;

 private:
  std::unique_ptr<state> state_;
};

// The pure pieces, tested with byte arrays.

struct hub_services_result {
  std::vector<route::route> routes;   // source::hub, host 127.0.0.1, in answer order
  std::string error;                  // non-empty: the answer is unusable (the previous hub routes stay)
  std::vector<std::string> warnings;  // one line per skipped service
};

// The hub's answer to GET /v1/services: a JSON array of services; each with a "name" and a non-null
// "tunnelPort" becomes a route. A null or absent tunnelPort is a service without a tunnel (skipped
// silently); other malformed services are skipped with a warning.
hub_services_result parse_hub_services(std::string_view json_text);

// "routes: +api (127.0.0.1:8080, reach), ~db (127.0.0.1:6543, hub), -web" in name order: `+` added,
// `~` changed upstream or source (shown as it is now), `-` removed. "" when both tables hold the same
// routes.
std::string describe_route_changes(const route::table& before, const route::table& after);

}  // namespace cproxy::control
