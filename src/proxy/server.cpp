// Implementation of connect/proxy/server.hpp: a worker_pool whose handler is serve_connection, with
// one worker_env (pool, route reader) per worker thread.
#include "connect/proxy/server.hpp"

#include <optional>
#include <vector>

#include "connect/io/worker_pool.hpp"
#include "connection.hpp"
#include "responses.hpp"
#include "upstream_health.hpp"

namespace cproxy::proxy {

struct server::state {
  const published<route::table>* routes = nullptr;
  io::listen_socket listener;
  server_options options;
  server_env env;
  std::vector<std::unique_ptr<worker_env>> workers_env;  // index = worker index
  std::unique_ptr<inspect::store> inspector;             // null when the inspector is off
  upstream_health health;                                // restart-holding's memory, shared by the workers
  std::optional<io::worker_pool> workers;
  bool stopped = false;
};

namespace {
coro::task<void> handle(io::socket client, const server_env* env, worker_env* w) {
  co_await serve_connection(std::move(client), env, w);
}
}  // namespace

server::server(io::listen_socket listener, server_options options, const published<route::table>& routes)
    : state_(std::make_unique<state>()) {
  state_->routes = &routes;
  state_->listener = std::move(listener);
  state_->options = std::move(options);
  state_->env = server_env{&state_->options, state_->listener.local_endpoint().port()};
  const unsigned n = state_->options.threads ? state_->options.threads : 1;
  // The routes there at start appear now: a stack coming up with its proxy is held while it starts.
  const auto started = std::chrono::steady_clock::now();
  // The snapshot is held for the loop: a range-for keeps only routes()'s result alive, not load()'s
  // pointer, and the route feed may publish a new table (freeing this one) meanwhile.
  const std::shared_ptr<const route::table> at_start = routes.load();
  for (const route::route& r : at_start->routes()) state_->health.seen(upstream_key(r), started);
  for (unsigned i = 0; i < n; ++i) {
    state_->workers_env.push_back(std::make_unique<worker_env>(routes));
    state_->workers_env.back()->index = i;
  }
  if (state_->options.inspect.enabled) {
    state_->inspector = std::make_unique<inspect::store>(state_->options.inspect, n);
    state_->env.inspector = state_->inspector.get();
  }

  state* st = state_.get();
  auto on_connection = [st](io::socket client, io::worker& w) {
    return handle(std::move(client), &st->env, st->workers_env[w.index()].get());
  };
  auto on_start = [st](io::worker& w) {
    worker_env& env = *st->workers_env[w.index()];
    env.ctx = &w.ctx();
    env.upstreams = std::make_unique<pooled_connector>(&w.ctx(), &st->health);
    // The relay bench decides: on io_uring, splicing large bodies and tunnels beats copying them.
    env.splice = w.ctx().caps().splice;
  };
  auto on_stop = [st](io::worker& w) { st->workers_env[w.index()]->upstreams->clear(); };
  state_->workers.emplace(state_->listener, io::worker_pool::options{state_->options.io, n}, on_connection,
                          on_start, on_stop);
}

server::~server() {
  stop(io::duration{});
}

void server::stop(io::duration grace) {
  if (!state_->workers || state_->stopped) return;
  state_->stopped = true;
  state* st = state_.get();
  // Connections waiting for their next request close now; one in the middle of a request finishes it
  // and closes after (its response says Connection: close).
  state_->workers->post_to_each([st](io::worker& w) {
    worker_env& env = *st->workers_env[w.index()];
    env.draining = true;
    for (io::stream* idle : env.idle_clients) idle->cancel();
  });
  state_->workers->stop(grace);
}

void server::stop_accepting() {
  if (state_->workers && !state_->stopped) state_->workers->stop_accepting();
}

std::uint16_t server::port() const noexcept {
  return state_->env.port;
}

io::native_handle_type server::listen_handle() const noexcept {
  return state_->listener.native_handle();
}

std::string server::status_json() const {
  const std::shared_ptr<const route::table> table = state_->routes->load();
  return proxy::status_json(page_context{&state_->options, state_->env.port, table.get(), nullptr});
}

}  // namespace cproxy::proxy
