// Implementation of proxy_fixture.hpp.
#include "http/proxy_fixture.hpp"

#include <signal.h>
#include <stdlib.h>

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <stdexcept>

namespace cproxy::http_test {
namespace {

using namespace std::chrono_literals;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string config_json(const proxy_config& config) {
  std::string out = "{\"routes\": [";
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const route_spec& r = config.routes[i];
    if (i) out += ", ";
    out += "{\"name\": " + json_string(r.name) + ", \"port\": " + std::to_string(r.port);
    if (!r.host.empty()) out += ", \"host\": " + json_string(r.host);
    out += "}";
  }
  out += "]";
  if (!config.extra.empty()) out += ", " + config.extra;
  return out + "}\n";
}

std::string tail(const std::string& s, std::size_t n = 3000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

}  // namespace

proxy_instance::proxy_instance(std::string io, const proxy_config& config) : io_(std::move(io)) {
  std::string dir = (std::filesystem::temp_directory_path() / "http_suite.XXXXXX").string();
  if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
  home_ = dir;
  const std::string config_path = home_ + "/test-config.json";
  std::ofstream(config_path) << config_json(config);

  std::vector<std::string> args{"proxy", "start", "--foreground", "--port",   "0", "--threads", "2",
                                "--io",  io_,     "--config",     config_path};
  args.insert(args.end(), config.args.begin(), config.args.end());
  child_ = std::make_unique<test::child_process>(test::spawn_options{
      .args = args, .extra_env = {"PRIVATECONNECT_HOME=" + home_}, .refuse_io_uring = false});
  // "Press Ctrl+C to stop" ends the start block, after the "[ok] HTTP proxy running on port N" line.
  const bool started = child_->wait_for_stdout("Press Ctrl+C to stop", 20s);
  port_ = test::running_port(child_->out());
  if (!started || port_ == 0) {
    const std::string why =
        "the proxy (--io " + io_ + ") did not start; config " + config_json(config) + output();
    child_.reset();
    std::filesystem::remove_all(home_);
    throw std::runtime_error(why);
  }
  pump_ = std::thread([this] {
    while (!stop_pump_.load()) {
      {
        std::lock_guard lock(mu_);
        if (const auto status = child_->wait_exit(30ms)) {
          exit_status_ = *status;
          return;
        }
      }
      // Pacing only, so that the test thread gets the lock between pumps.
      std::this_thread::sleep_for(2ms);
    }
  });
}

proxy_instance::~proxy_instance() {
  stop_pump_ = true;
  if (pump_.joinable()) pump_.join();
  if (child_) {
    child_->signal(SIGTERM);
    if (!child_->wait_exit(20s)) {
      std::cerr << "*** the proxy (--io " << io_ << ", pid " << child_->pid()
                << ") did not stop within 20 s of SIGTERM; killing it\n";
    }
    child_.reset();  // SIGKILLs it if it still runs
  }
  std::error_code ec;
  std::filesystem::remove_all(home_, ec);
}

std::optional<int> proxy_instance::exited() const {
  const int status = exit_status_.load();
  if (status < 0) return std::nullopt;
  return status;
}

std::string proxy_instance::output() {
  std::string log;
  {
    std::ifstream in(home_ + "/proxy.log");
    log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::lock_guard lock(mu_);
  if (!child_) return {};
  return "\n--- proxy stdout:\n" + tail(child_->out(), 600) + "\n--- proxy stderr:\n" + tail(child_->err()) +
         "\n--- proxy.log:\n" + tail(log);
}

std::string proxy_instance::log_text() {
  std::string log;
  {
    std::ifstream in(home_ + "/proxy.log");
    log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::lock_guard lock(mu_);
  if (!child_) return log;
  return child_->err() + log;
}

std::optional<std::string> proxy_instance::stop_and_take_log(std::chrono::milliseconds deadline) {
  stop_pump_ = true;
  if (pump_.joinable()) pump_.join();
  std::lock_guard lock(mu_);
  if (!child_) return std::nullopt;
  if (exit_status_.load() < 0) {
    child_->signal(SIGTERM);
    const auto status = child_->wait_exit(deadline);
    if (!status) return std::nullopt;
    exit_status_ = *status;
  }
  return child_->err();
}

std::optional<io_counters_line> parse_io_counters(const std::string& log) {
  static const std::regex line(
      R"(io \((\w+); splice (yes|no); provided buffers (yes|no)\): (\d+) splices moved (\d+) bytes, (\d+) bytes )"
      R"(copied instead of spliced, (\d+) receives into provided buffers, (\d+) into pooled buffers, (\d+) bytes )"
      R"(received into user space)");
  std::optional<io_counters_line> found;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const auto number = [&](int i) { return std::stoull(m[i].str()); };
    found = io_counters_line{m[1].str(), m[2] == "yes", m[3] == "yes", number(4), number(5),
                             number(6),  number(7),     number(8),     number(9)};
  }
  return found;
}

proxy_instance& proxy_pool::fresh(const std::string& io) {
  proxies_.erase(io);
  return get(io);
}

std::optional<std::string> proxy_pool::stop(const std::string& io) {
  const auto it = proxies_.find(io);
  if (it == proxies_.end() || !it->second) return std::nullopt;
  std::optional<std::string> log = it->second->stop_and_take_log(20s);
  proxies_.erase(it);
  return log;
}

void expect_relay_path(proxy_pool& pool, const std::string& io, relay_path path, std::uint64_t bytes) {
  const std::optional<std::string> log = pool.stop(io);
  BOOST_REQUIRE_MESSAGE(log, "the " << io << " proxy did not stop within 20 s of SIGTERM");
  const std::optional<io_counters_line> n = parse_io_counters(*log);
  BOOST_REQUIRE_MESSAGE(n, "no io counters line in the " << io << " proxy's log:\n" << tail(*log));
  BOOST_TEST_MESSAGE(io << " proxy: " << n->splice_calls << " splices moved " << n->spliced_bytes
                        << " bytes, " << n->copy_fallback_bytes << " copied instead, " << n->received_bytes
                        << " bytes received into user space; " << n->provided_buffer_recvs << " provided, "
                        << n->pooled_buffer_recvs << " pooled receives (case moved " << bytes << " bytes)");
  BOOST_TEST(n->backend == io);
  // What the relay may have read before it could splice: the rest of the read that brought the head.
  constexpr std::uint64_t read_ahead = 64 * 1024;
  if (io == "uring" && path == relay_path::spliced) {
    if (n->splice) {
      BOOST_TEST(n->spliced_bytes + read_ahead >= bytes, "splice moved too little: " << n->spliced_bytes);
      BOOST_TEST(n->copy_fallback_bytes == 0u, "splice_to copied " << n->copy_fallback_bytes << " bytes");
      return;
    }
    BOOST_TEST_MESSAGE("io_uring here cannot splice: the zero-copy relay is NOT tested");
    std::cerr << "*** WARNING: io_uring here cannot splice: "
              << boost::unit_test::framework::current_test_case().full_name()
              << " checks the copying path only\n";
  }
  BOOST_TEST(n->spliced_bytes == 0u);
  BOOST_TEST(n->received_bytes >= bytes, "the copying relay read only " << n->received_bytes << " bytes");
}

proxy_instance& proxy_pool::get(const std::string& io) {
  auto& slot = proxies_[io];
  if (!slot) slot = std::make_unique<proxy_instance>(io, config_);
  return *slot;
}

void proxy_pool::check_alive() {
  for (auto& [io, proxy] : proxies_) {
    if (!proxy || !proxy->exited()) continue;
    BOOST_ERROR("the " << io << " proxy died during this case (status " << *proxy->exited() << ")"
                       << proxy->output());
    proxy.reset();  // reported once; the next case starts a new one
  }
}

void proxy_pool::show_logs_if_failed() {
  const auto& tc = boost::unit_test::framework::current_test_case();
  if (boost::unit_test::results_collector.results(tc.p_id).p_assertions_failed == 0u) return;
  for (auto& [io, proxy] : proxies_) {
    if (proxy)
      std::cerr << "*** after the failed case " << tc.full_name() << ", the " << io
                << " proxy:" << proxy->output() << "\n";
  }
}

}  // namespace cproxy::http_test
