// The start blocks compared exactly with the contract ("Printed output"): the foreground block for HTTP
// (with and without routes) and HTTPS (CA made, reused, made again when unusable), the daemon's HTTPS
// block, status with TLS enabled, the certificate files and their modes, and the --cert/--key usage rule.
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "child_process.hpp"
#include "isolated_home.hpp"
#include "proxy_home.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
using cproxy::test::free_port;
using cproxy::test::isolated_home;
using cproxy::test::proxy_home;
using cproxy::test::run;
using cproxy::test::run_result;

namespace {

// Runs a foreground proxy until its block is printed, stops it with SIGINT, returns its stdout.
std::string foreground_block(const isolated_home& h, std::vector<std::string> args) {
  args.insert(args.begin(), {"proxy", "start", "--foreground", "--threads", "1"});
  child_process p({.args = std::move(args), .extra_env = h.env(), .refuse_io_uring = false});
  const bool started = p.wait_for_stdout("Press Ctrl+C to stop\n", 20s);
  BOOST_TEST(started, "stdout: " << p.out() << "\nstderr: " << p.err());
  p.signal(SIGINT);
  BOOST_TEST(p.wait_exit(20s).value_or(-1) == 0);
  return p.out();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

std::string header(const std::string& port, const std::string& tls) {
  return "🌐 Starting subdomain proxy...\n\n  Hub:  https://hub.privateconnect.co\n  Port: " + port +
         "\n  TLS:  " + tls + "\n\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(start_output)

BOOST_AUTO_TEST_CASE(foreground_http_without_routes) {
  isolated_home h;
  const std::string port = std::to_string(free_port());
  const std::string out = foreground_block(h, {"--port", port});
  BOOST_TEST(out == header(port, "disabled") +
                        "[!] No routes yet\n  Add one with: connect reach <service>, or \"routes\" in " +
                        h.home.path + "/config.json\n\n[ok] HTTP proxy running on port " + port +
                        "\n\n  Press Ctrl+C to stop\n");
}

BOOST_AUTO_TEST_CASE(foreground_http_with_routes) {
  isolated_home h;
  std::ofstream(h.home.path + "/config.json")
      << R"({"routes": [{"name": "web", "port": 5173}, {"name": "api", "port": 8080, "host": "127.0.0.1"}]})";
  const std::string port = std::to_string(free_port());
  const std::string out = foreground_block(h, {"--port", port});
  BOOST_TEST(
      out ==
      header(port, "disabled") +
          "[ok] Found 2 route(s):\n  • api → 127.0.0.1:8080 [config]\n  • web → 127.0.0.1:5173 [config]\n\n"
          "[ok] HTTP proxy running on port " +
          port +
          "\n\n  Access your services via subdomains:\n\n"
          "    http://api.localhost:" +
          port + "\n    http://web.localhost:" + port + "\n\n  Press Ctrl+C to stop\n");
}

BOOST_AUTO_TEST_CASE(foreground_https_makes_the_ca_once_and_reuses_it) {
  isolated_home h;
  std::ofstream(h.home.path + "/config.json")
      << R"({"routes": [{"name": "api", "port": 8080, "host": "127.0.0.1"}]})";
  const std::string port = std::to_string(free_port());
  const std::string routes_and_after =
      "[ok] Found 1 route(s):\n  • api → 127.0.0.1:8080 [config]\n\n"
      "[ok] HTTPS proxy running on port " +
      port + "\n\n  Access your services via subdomains:\n\n    https://api.localhost:" + port +
      "\n\n  Press Ctrl+C to stop\n";
  const std::string first = foreground_block(h, {"--port", port, "--https"});
  BOOST_TEST(first == header(port, "auto-generating certificates...") +
                          "  [ok] Generated local CA\n  [ok] Generated server certificate\n"
                          "  [!] CA not trusted yet — run: connect proxy trust\n\n" +
                          routes_and_after);
  const std::string certs = h.home.path + "/certs";
  BOOST_TEST(mode_of(certs) == 0700u);
  BOOST_TEST(mode_of(certs + "/ca.key") == 0600u);
  BOOST_TEST(mode_of(certs + "/server.key") == 0600u);
  BOOST_TEST(slurp(certs + "/ca.crt").starts_with("-----BEGIN CERTIFICATE-----"));
  BOOST_TEST(slurp(certs + "/server.crt").starts_with("-----BEGIN CERTIFICATE-----"));
  const std::string ca_before = slurp(certs + "/ca.crt");

  const std::string second = foreground_block(h, {"--port", port, "--https"});
  BOOST_TEST(second == header(port, "auto-generating certificates...") +
                           "  [ok] Using local CA\n  [ok] Generated server certificate\n"
                           "  [!] CA not trusted yet — run: connect proxy trust\n\n" +
                           routes_and_after);
  BOOST_TEST(slurp(certs + "/ca.crt") == ca_before, "a usable CA is kept: its trust stays valid");
}

BOOST_AUTO_TEST_CASE(an_unusable_ca_is_made_again_and_says_trust_must_be_redone) {
  isolated_home h;
  const std::string port = std::to_string(free_port());
  foreground_block(h, {"--port", port, "--https"});
  const std::string certs = h.home.path + "/certs";
  std::ofstream(certs + "/ca.crt") << "not a certificate\n";
  const std::string corrupt = foreground_block(h, {"--port", port, "--https"});
  BOOST_TEST(corrupt.find(
                 "  [ok] Generated local CA\n  [!] Made a new local CA (the old one: ca.crt is corrupt (") !=
                 std::string::npos,
             corrupt);
  BOOST_TEST(
      corrupt.find("); trust it again — run: connect proxy trust\n  [ok] Generated server certificate\n") !=
          std::string::npos,
      corrupt);

  // A CA that ends within 30 days is made again before browsers start refusing its leaves.
  const std::string make_short_lived =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 -subj /CN=old -keyout "
      "'" +
      certs + "/ca.key' -out '" + certs + "/ca.crt' >/dev/null 2>&1";
  BOOST_REQUIRE(std::system(make_short_lived.c_str()) == 0);
  const std::string expiring = foreground_block(h, {"--port", port, "--https"});
  BOOST_TEST(expiring.find("  [!] Made a new local CA (the old one: it expires on ") != std::string::npos,
             expiring);

  // A dev domain the CA's name constraints do not permit needs a new CA too.
  const std::string widened = foreground_block(h, {"--port", port, "--https", "--domain", "test"});
  BOOST_TEST(
      widened.find("  [!] Made a new local CA (the old one: it does not cover the dev domain test); trust it "
                   "again — run: connect proxy trust\n") != std::string::npos,
      widened);
  const std::string same = foreground_block(h, {"--port", port, "--https", "--domain", "test"});
  BOOST_TEST(same.find("  [ok] Using local CA\n") != std::string::npos, same);
}

BOOST_AUTO_TEST_CASE(daemon_https_block_status_and_state) {
  isolated_home h;
  const std::string port = std::to_string(free_port());
  const run_result start = run(h, {"proxy", "start", "--https", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 0, start.err);
  BOOST_TEST(start.out == "🌐 Starting proxy...\n\n[ok] HTTPS proxy started on port " + port +
                              "\n  Logs: " + h.home.path + "/proxy.log\n  Stop: connect proxy stop\n");
  BOOST_TEST(slurp(h.home.path + "/proxy-state.json").find("\"tls\":true") != std::string::npos);
  const run_result status = run(h, {"proxy", "status"});
  BOOST_TEST(
      status.out.find("\n    Port: " + port + "\n    TLS:  enabled\n    Routes:\n") != std::string::npos,
      status.out);
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_CASE(cert_and_key_go_together) {
  isolated_home h;
  const run_result only_cert = run(h, {"proxy", "start", "--cert", "/nonexistent.pem"});
  BOOST_TEST(only_cert.code == 2);
  BOOST_TEST(only_cert.err ==
             "connect: --cert and --key go together: give both\nTry: connect proxy --help\n");
  const run_result check_elsewhere = run(h, {"proxy", "status", "--check"});
  BOOST_TEST(check_elsewhere.code == 2);
}

// The public key of a PEM certificate or private key, as `openssl pkey -pubout` prints it.
std::string public_key_of(const std::string& path, bool is_cert) {
  const std::string cmd = is_cert ? "openssl x509 -noout -pubkey -in '" + path + "' 2>/dev/null"
                                  : "openssl pkey -pubout -in '" + path + "' 2>/dev/null";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

BOOST_AUTO_TEST_CASE(starts_at_once_leave_matching_pairs_and_a_readable_key_is_put_right) {
  isolated_home h;
  // Four --https starts in one empty home at the same moment: certs/ is locked while a process makes
  // certificates, so the files on disk are always one process's pairs. Only one of them may then run
  // (a second proxy in the same home is refused once it has its port): the others say so and exit 1.
  std::vector<std::unique_ptr<child_process>> starts;
  for (int i = 0; i < 4; ++i)
    starts.push_back(std::make_unique<child_process>(cproxy::test::spawn_options{
        .args = {"proxy", "start", "--foreground", "--threads", "1", "--https", "--port", "0"},
        .extra_env = h.env(),
        .refuse_io_uring = false}));
  std::vector<child_process*> running;
  for (auto& p : starts) {
    if (p->wait_for_stdout("Press Ctrl+C to stop\n", 20s)) {
      running.push_back(p.get());
      continue;
    }
    BOOST_TEST(p->wait_exit(20s).value_or(-1) == 1, p->out() << p->err());
    BOOST_TEST(("\n" + p->err()).find("\n[x] A proxy is already running in " + h.home.path + " (pid ") !=
                   std::string::npos,
               p->err());
  }
  BOOST_TEST(running.size() == 1u);
  for (child_process* p : running) p->signal(SIGINT);
  for (child_process* p : running) BOOST_TEST(p->wait_exit(20s).value_or(-1) == 0);
  const std::string certs = h.home.path + "/certs";
  const std::string ca_key = public_key_of(certs + "/ca.key", false);
  BOOST_TEST(!ca_key.empty());
  BOOST_TEST(ca_key == public_key_of(certs + "/ca.crt", true), "ca.key does not match ca.crt");
  BOOST_TEST(public_key_of(certs + "/server.key", false) == public_key_of(certs + "/server.crt", true),
             "server.key does not match server.crt");

  std::filesystem::permissions(certs + "/ca.key",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                   std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  const std::string out = foreground_block(h, {"--port", "0", "--https"});
  BOOST_TEST(out.find("  [ok] Using local CA\n") != std::string::npos, out);
  BOOST_TEST(mode_of(certs + "/ca.key") == 0600u);
}

BOOST_AUTO_TEST_CASE(trust_alone_means_the_trust_action) {
  isolated_home h;
  // `connect proxy --trust` with nothing that starts a proxy is `connect proxy trust`: no proxy runs.
  const run_result trust = run(h, {"proxy", "--trust"});
  BOOST_TEST(trust.out.starts_with("🔒 Trusting Private Connect local CA...\n\n  [ok] Generated local CA\n"),
             trust.out);
  BOOST_TEST(!std::filesystem::exists(h.home.path + "/proxy-state.json"));
  BOOST_TEST(std::filesystem::exists(h.home.path + "/certs/ca.crt"));
}

BOOST_AUTO_TEST_CASE(trust_with_options_about_running_starts_an_https_proxy_and_trusts) {
  isolated_home h;
  const std::string port = std::to_string(free_port());
  const run_result start = run(h, {"proxy", "--trust", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 0, start.err);
  BOOST_TEST(
      start.out.starts_with(
          "🌐 Starting proxy...\n\n[ok] HTTPS proxy started on port " + port + "\n  Logs: " + h.home.path +
          "/proxy.log\n  Stop: connect proxy stop\n\n🔒 Trusting Private Connect local CA...\n"),
      start.out);
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_SUITE_END()
