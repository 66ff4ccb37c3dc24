// The proxy under test: the real `connect` binary (foreground, ephemeral port, fresh PRIVATECONNECT_HOME and
// --config file), its output drained on a thread so it never blocks on a full pipe, stopped by pid; shared
// as one proxy per backend per suite, started on first use and checked after every case.
#pragma once

#include <atomic>
#include <boost/test/tree/decorator.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "e2e/child_process.hpp"
#include "support/built_backends.hpp"

namespace cproxy::http_test {

// Every case runs once per io backend the build has.
inline const auto& backends = test::built_backends;

struct route_spec {
  std::string name;
  unsigned port = 0;
  std::string host;  // empty: not given (the contract's default, localhost)
};

struct proxy_config {
  std::vector<route_spec> routes;
  std::string extra;              // more top-level JSON members, e.g. R"("timeouts": {"response": 1})"
  std::vector<std::string> args;  // more command-line options, e.g. {"--max-body", "1000"}
};

// The line the proxy's worker pool logs at stop (src/io/worker_pool.cpp): which data paths its relay
// took, summed over its workers.
struct io_counters_line {
  std::string backend;
  bool splice = false;            // caps().splice when the workers started
  bool provided_buffers = false;  // caps().provided_buffers then
  std::uint64_t splice_calls = 0, spliced_bytes = 0, copy_fallback_bytes = 0;
  std::uint64_t provided_buffer_recvs = 0, pooled_buffer_recvs = 0, received_bytes = 0;
};
// The last such line in `log`, or nullopt.
std::optional<io_counters_line> parse_io_counters(const std::string& log);

class proxy_instance {
 public:
  // Starts the proxy and waits until it prints that it runs; throws (with its output) if it does not.
  proxy_instance(std::string io, const proxy_config& config);
  ~proxy_instance();
  proxy_instance(const proxy_instance&) = delete;
  proxy_instance& operator=(const proxy_instance&) = delete;

  unsigned port() const { return port_; }
  const std::string& io() const { return io_; }
  const std::string& home() const { return home_; }
  // The exit status once the process has ended on its own.
  std::optional<int> exited() const;
  // Its stdout and stderr so far (the tails), for failure messages.
  std::string output();
  // All of its stderr and proxy.log so far, to look for a line in: output() is a tail, and a line
  // searched there scrolls out of it once enough lines follow (other workers' access lines).
  std::string log_text();
  // SIGTERM, then waits up to `deadline` for the exit. Returns all of its stderr (where a foreground
  // proxy logs), or nullopt if it did not exit in time (it is killed then).
  std::optional<std::string> stop_and_take_log(std::chrono::milliseconds deadline);

 private:
  std::string io_;
  std::string home_;
  unsigned port_ = 0;
  std::mutex mu_;  // the pump thread and the test thread share child_
  std::unique_ptr<test::child_process> child_;
  std::atomic<bool> stop_pump_{false};
  std::atomic<int> exit_status_{-1};
  std::thread pump_;
};

class proxy_pool {
 public:
  explicit proxy_pool(proxy_config config) : config_(std::move(config)) {}
  // The suite's proxy for `io`, started on first use (again after check_alive() found it dead).
  proxy_instance& get(const std::string& io);
  // A new proxy for `io`, the old one stopped: for a case that reads the counters of its own traffic.
  proxy_instance& fresh(const std::string& io);
  // Stops the suite's proxy for `io` and returns its log; the next get() starts a new one.
  std::optional<std::string> stop(const std::string& io);
  // Fails the current case if one of the suite's proxies died during it, and forgets that proxy.
  void check_alive();
  // After a failed case: the tails of every proxy's output and proxy.log on stderr, to see its side.
  void show_logs_if_failed();

 private:
  proxy_config config_;
  std::map<std::string, std::unique_ptr<proxy_instance>> proxies_;
};

// Which way a relay moves bytes through the proxy, as src/proxy/relay.cpp decides: `spliced` where the
// uring backend splices (bodies of 256 KiB or more, CONNECT tunnels), `copied` where it never does.
enum class relay_path { spliced, copied };

// Stops the suite's proxy for `io` (which the case got from fresh()) and checks from its io counters
// line that at least `bytes` went the expected way: on uring `spliced` means splice moved them and
// nothing was copied instead; elsewhere, and for `copied`, that they were read into user space.
// A uring without splice skips the splice check loudly.
void expect_relay_path(proxy_pool& pool, const std::string& io, relay_path path, std::uint64_t bytes);

// A suite's shared environment (upstreams and a proxy_pool named `proxies`), built by the suite fixture
// decorator shared_env<Env>() and reached from each case through with_env<Env>.
template <class Env>
struct suite_env {
  static inline std::unique_ptr<Env> instance;
  static void setup() { instance = std::make_unique<Env>(); }
  static void teardown() { instance.reset(); }
};

template <class Env>
boost::unit_test::decorator::fixture_t shared_env() {
  return boost::unit_test::decorator::fixture(&suite_env<Env>::setup, &suite_env<Env>::teardown);
}

// The per-case fixture of BOOST_FIXTURE_TEST_SUITE: `env` in the case body, and a check afterwards that
// the case did not kill a proxy (a crash would otherwise show up as failures of the cases after it).
template <class Env>
struct with_env {
  with_env() : env(*suite_env<Env>::instance) {}
  ~with_env() {
    env.proxies.check_alive();
    env.proxies.show_logs_if_failed();
  }
  with_env(const with_env&) = delete;
  with_env& operator=(const with_env&) = delete;
  Env& env;
};

}  // namespace cproxy::http_test
