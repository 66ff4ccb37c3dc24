// Implementation of connect/proxy/server.hpp: a worker_pool whose handler is serve_connection.
#include "connect/proxy/server.hpp"

#include <optional>

#include "connect/io/worker_pool.hpp"
#include "connection.hpp"

namespace cproxy::proxy {

struct server::state {
  io::listen_socket listener;
  server_options options;
  connection_env env;
  std::optional<io::worker_pool> workers;
};

namespace {
coro::task<void> handle(io::socket client, const connection_env* env) {
  co_await serve_connection(std::move(client), env);
}
}  // namespace

server::server(io::listen_socket listener, server_options options) : state_(std::make_unique<state>()) {
  state_->listener = std::move(listener);
  state_->options = std::move(options);
  state_->env = connection_env{&state_->options, state_->listener.local_endpoint().port()};
  const connection_env* env = &state_->env;
  state_->workers.emplace(state_->listener, io::worker_pool::options{state_->options.io, state_->options.threads},
                          [env](io::socket client, io::worker&) { return handle(std::move(client), env); });
}

server::~server() { stop(io::duration{}); }

void server::stop(io::duration grace) {
  if (state_->workers) state_->workers->stop(grace);
}

std::uint16_t server::port() const noexcept { return state_->env.port; }

}  // namespace cproxy::proxy
