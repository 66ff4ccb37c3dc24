// `connect proxy doctor [--json]` end to end: the real binary in a temporary home, run in a mount
// namespace whose /etc/hosts and /etc/nsswitch.conf are the test's files, so that which names resolve
// is the test's choice on any machine. Upstreams are listening sockets of the test (loopback, ephemeral
// ports) or ports just closed. Each check's passing and failing line is compared exactly; the I/O
// backend's reason depends on the kernel, so only its line's start is.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "isolated_home.hpp"
#include "run_program.hpp"

using cproxy::test::isolated_home;
using cproxy::test::program_result;
using cproxy::test::run_program;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void write_text_at(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  write_text(path, text);
}

// A loopback listener the test holds: connects to it succeed (the kernel's backlog accepts them).
struct listener {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unsigned port = 0;
  listener() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
};

struct doctor_home {
  isolated_home h;
  std::string etc = h.home.path + "/etc";
  std::string hosts_file = etc + "/hosts";
  std::string nsswitch = etc + "/nsswitch.conf";
  unsigned port = cproxy::test::free_port();
  doctor_home() {
    fs::create_directories(etc);
    write_text(hosts_file, "127.0.0.1 localhost\n");
    write_text(nsswitch, "hosts: files\n");
  }
  void routes(const std::string& json_routes) const {
    write_text(h.home.path + "/config.json",
               "{\"port\": " + std::to_string(port) + ", \"routes\": " + json_routes + "}");
  }
  std::vector<std::string> env() const {
    auto e = h.env();
    e.push_back("HOSTS_FILE=" + hosts_file);
    return e;
  }
  bool namespace_works() const {
    const auto probe = run_program(cproxy::test::in_resolver_namespace(hosts_file, nsswitch, {"true"}), {});
    if (probe.code != 0) BOOST_TEST_MESSAGE("SKIPPED: no mount namespace here: " << probe.err);
    return probe.code == 0;
  }
  program_result doctor(bool json = false) const {
    std::vector<std::string> cmd = {CONNECT_BINARY, "proxy", "doctor"};
    if (json) cmd.push_back("--json");
    return run_program(cproxy::test::in_resolver_namespace(hosts_file, nsswitch, cmd), env());
  }
  program_result connect(std::vector<std::string> args) const {
    args.insert(args.begin(), CONNECT_BINARY);
    return run_program(args, env());
  }
};

// The output with the I/O backend line checked for its start and replaced by "  [ok] IO".
std::string without_io_reason(const std::string& out, const std::string& io_start) {
  std::istringstream lines(out);
  std::string result;
  bool seen = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("  [ok] I/O backend")) {
      BOOST_TEST(line.starts_with(io_start), line);
      line = "  [ok] IO";
      seen = true;
    }
    result += line + "\n";
  }
  BOOST_TEST(seen);
  return result;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(doctor_command)

BOOST_AUTO_TEST_CASE(proxy_stopped_a_dead_upstream_and_names_that_do_not_resolve) {
  doctor_home w;
  if (!w.namespace_works()) return;
  listener api;
  const unsigned dead = cproxy::test::free_port();
  w.routes("[{\"name\": \"api\", \"port\": " + std::to_string(api.port) +
           "}, {\"name\": \"web\", \"port\": " + std::to_string(dead) + "}]");
  const auto r = w.doctor();
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err == "");
  const std::string p = std::to_string(w.port), d = std::to_string(dead);
  BOOST_TEST(
      without_io_reason(r.out, "  [ok] I/O backend at the next start: ") ==
      "🩺 Proxy doctor\n\n"
      "  [!] Proxy is not running — run: connect proxy start\n"
      "  [ok] api → 127.0.0.1:" +
          std::to_string(api.port) +
          " accepts connections\n"
          "  [x] web → 127.0.0.1:" +
          d + " does not accept connections (Connection refused) — start the service on port " + d +
          "\n"
          "  [x] api.localhost does not resolve (Name or service not known) — run: connect proxy hosts\n"
          "  [x] web.localhost does not resolve (Name or service not known) — run: connect proxy hosts\n"
          "  [ok] No local CA yet (made by the first HTTPS start)\n"
          "  [ok] IO\n"
          "  [ok] Port " +
          p +
          " is free\n\n"
          "[x] 3 problem(s) found\n");
}

BOOST_AUTO_TEST_CASE(proxy_running_with_names_in_the_hosts_file_has_no_problem) {
  doctor_home w;
  if (!w.namespace_works()) return;
  listener api;
  w.routes("[{\"name\": \"api\", \"port\": " + std::to_string(api.port) + "}]");
  BOOST_REQUIRE(w.connect({"proxy", "hosts"}).code == 0);
  BOOST_REQUIRE(w.connect({"proxy", "start", "--threads", "1"}).code == 0);
  const int pid = cproxy::test::state_pid(w.h.home.path);
  const auto status = boost::json::parse(w.connect({"proxy", "status", "--json"}).out);
  const std::string io = std::string(status.at("io").as_string());
  const auto r = w.doctor();
  const std::string p = std::to_string(w.port), pid_text = std::to_string(pid);
  BOOST_TEST(r.code == 0);
  BOOST_TEST(without_io_reason(r.out, "  [ok] I/O backend: " + io + " (") ==
             "🩺 Proxy doctor\n\n"
             "  [ok] Proxy running (PID " +
                 pid_text + "), answering on port " + p +
                 "\n"
                 "  [ok] api → 127.0.0.1:" +
                 std::to_string(api.port) +
                 " accepts connections\n"
                 "  [ok] api.localhost resolves to 127.0.0.1\n"
                 "  [ok] No local CA yet (made by the first HTTPS start)\n"
                 "  [ok] IO\n"
                 "  [ok] Port " +
                 p + " is held by this proxy (PID " + pid_text +
                 ")\n\n"
                 "[ok] No problems found\n");
  BOOST_TEST(w.connect({"proxy", "stop"}).code == 0);
}

BOOST_AUTO_TEST_CASE(a_proxy_that_does_not_answer) {
  doctor_home w;
  if (!w.namespace_works()) return;
  w.routes("[]");
  BOOST_REQUIRE(w.connect({"proxy", "start", "--threads", "1"}).code == 0);
  const int pid = cproxy::test::state_pid(w.h.home.path);
  BOOST_REQUIRE(pid > 0);
  ::kill(pid, SIGSTOP);  // the daemon this case started: it holds the port and answers nothing
  const auto r = w.doctor();
  ::kill(pid, SIGCONT);
  const std::string p = std::to_string(w.port), pid_text = std::to_string(pid);
  BOOST_TEST(r.code == 1);
  BOOST_TEST(without_io_reason(r.out, "  [ok] I/O backend at the next start: ") ==
             "🩺 Proxy doctor\n\n"
             "  [x] Proxy (PID " +
                 pid_text + ") holds port " + p +
                 " but does not answer on proxy.sock — run: connect proxy start --replace\n"
                 "  [!] No routes yet — add one with: connect reach <service>, or \"routes\" in " +
                 w.h.home.path +
                 "/config.json\n"
                 "  [ok] No local CA yet (made by the first HTTPS start)\n"
                 "  [ok] IO\n"
                 "  [!] Port " +
                 p + " is held by the proxy (PID " + pid_text +
                 "), which does not answer\n\n"
                 "[x] 1 problem(s) found\n");
  BOOST_TEST(w.connect({"proxy", "stop"}).code == 0);
}

BOOST_AUTO_TEST_CASE(a_port_held_by_another_program_and_no_routes) {
  doctor_home w;
  if (!w.namespace_works()) return;
  listener other;
  w.port = other.port;
  w.routes("[]");
  const auto r = w.doctor();
  const std::string p = std::to_string(w.port);
  BOOST_TEST(r.code == 1);
  BOOST_TEST(without_io_reason(r.out, "  [ok] I/O backend at the next start: ") ==
             "🩺 Proxy doctor\n\n"
             "  [!] Proxy is not running — run: connect proxy start\n"
             "  [!] No routes yet — add one with: connect reach <service>, or \"routes\" in " +
                 w.h.home.path +
                 "/config.json\n"
                 "  [ok] No local CA yet (made by the first HTTPS start)\n"
                 "  [ok] IO\n"
                 "  [x] Port " +
                 p + " is held by another program (PID " + std::to_string(::getpid()) +
                 ") — run: connect proxy start --port " + std::to_string(w.port + 1) +
                 ", or add --replace to take it over\n\n"
                 "[x] 1 problem(s) found\n");
}

BOOST_AUTO_TEST_CASE(a_ca_near_expiry_and_a_trust_store_that_cannot_be_read) {
  doctor_home w;
  if (!w.namespace_works()) return;
  w.routes("[]");
  const std::string certs = w.h.home.path + "/certs";
  fs::create_directories(certs);
  const auto made =
      run_program({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-days", "10", "-subj", "/CN=Private Connect Local CA", "-keyout",
                   certs + "/ca.key", "-out", certs + "/ca.crt"},
                  {});
  BOOST_REQUIRE_MESSAGE(made.code == 0, made.err);
  const auto end = run_program(
      {"openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", certs + "/ca.crt"}, {});
  BOOST_REQUIRE(end.code == 0);
  const std::string date = end.out.substr(std::string("notAfter=").size(), 10);
  const auto r = w.doctor();
  BOOST_TEST(r.code == 1);
  BOOST_TEST(
      without_io_reason(r.out, "  [ok] I/O backend at the next start: ").find("  [ok] No local CA yet") ==
      std::string::npos);
  const std::string expected = "  [!] Local CA " + certs + "/ca.crt expires on " + date +
                               " (in 9 days) — run: connect proxy trust (it makes a new one)\n"
                               "  [x] System trust store: cannot read " +
                               w.h.trust_root + "/etc/os-release — run: connect proxy trust\n";
  BOOST_TEST(r.out.find(expected) != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(a_trusted_ca_then_one_untrusted_in_nss) {
  doctor_home w;
  if (!w.namespace_works()) return;
  if (cproxy::test::find_on_path("certutil").empty() ||
      cproxy::test::find_on_path("update-ca-certificates").empty()) {
    BOOST_TEST_MESSAGE(
        "SKIPPED a_trusted_ca_then_one_untrusted_in_nss: certutil or update-ca-certificates missing");
    return;
  }
  w.routes("[]");
  // A fake Debian root that the real update-ca-certificates fills (as in trust_test.cpp), with one other
  // CA listed: with no certificate at all the tool would keep an old bundle.
  const std::string root = w.h.trust_root;
  write_text_at(root + "/etc/os-release", "ID=debian\n");
  for (const char* dir : {"/usr/share/ca-certificates/other", "/usr/local/share/ca-certificates",
                          "/etc/ssl/certs", "/etc/ca-certificates/update.d"})
    fs::create_directories(root + dir);
  write_text(root + "/etc/ca-certificates.conf", "other/other-ca.crt\n");
  const auto other = run_program(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
       w.etc + "/other.key", "-out", root + "/usr/share/ca-certificates/other/other-ca.crt", "-subj",
       "/CN=Other CA", "-days", "30"},
      {});
  BOOST_REQUIRE_MESSAGE(other.code == 0, other.err);
  fs::create_directories(w.h.user_home + "/.pki/nssdb");
  BOOST_REQUIRE(
      run_program({"certutil", "-N", "-d", "sql:" + w.h.user_home + "/.pki/nssdb", "--empty-password"}, {})
          .code == 0);
  const auto trusted = w.connect({"proxy", "trust"});
  BOOST_REQUIRE_MESSAGE(trusted.code == 0, trusted.out + trusted.err);

  const std::string ca = w.h.home.path + "/certs/ca.crt";
  const auto end =
      run_program({"openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", ca}, {});
  BOOST_REQUIRE(end.code == 0);
  const std::string date = end.out.substr(std::string("notAfter=").size(), 10);
  const auto all_ok = w.doctor();
  BOOST_TEST(all_ok.code == 0, all_ok.out);
  BOOST_TEST(all_ok.out.find("  [ok] Local CA " + ca + " expires on " + date + " (in ") != std::string::npos,
             all_ok.out);
  BOOST_TEST(all_ok.out.find(" days)\n"
                             "  [ok] System trust store trusts the CA\n"
                             "  [ok] NSS database ~/.pki/nssdb (Chrome, Chromium) trusts the CA\n"
                             "  [ok] I/O backend") != std::string::npos,
             all_ok.out);

  BOOST_REQUIRE(run_program({"certutil", "-D", "-d", "sql:" + w.h.user_home + "/.pki/nssdb", "-n",
                             "Private Connect Local CA"},
                            {})
                    .code == 0);
  const auto untrusted = w.doctor();
  BOOST_TEST(untrusted.code == 1);
  BOOST_TEST(untrusted.out.find(
                 "  [ok] System trust store trusts the CA\n"
                 "  [x] NSS database ~/.pki/nssdb (Chrome, Chromium) does not trust the CA: not in the "
                 "database — run: connect proxy trust\n") != std::string::npos,
             untrusted.out);
  BOOST_TEST(untrusted.out.ends_with("\n[x] 1 problem(s) found\n"));
}

BOOST_AUTO_TEST_CASE(a_route_whose_process_has_exited_is_named) {
  doctor_home w;
  if (!w.namespace_works()) return;
  w.routes("[]");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // reaped: the pid is dead
  write_text(w.h.home.path + "/active-routes.json",
             "{\"version\": 1, \"routes\": [{\"serviceName\": \"gone\", \"localPort\": 4321, \"pid\": " +
                 std::to_string(child) + "}]}");
  const auto r = w.doctor();
  BOOST_TEST(r.code == 0);
  BOOST_TEST(
      r.out.find(
          "  [!] No routes yet — add one with: connect reach <service>, or \"routes\" in " + w.h.home.path +
          "/config.json\n"
          "  [!] gone: its process in active-routes.json has exited; not routed — start gone again\n") !=
          std::string::npos,
      r.out);
}

BOOST_AUTO_TEST_CASE(json_has_one_entry_per_line_with_status_and_fix) {
  doctor_home w;
  if (!w.namespace_works()) return;
  const unsigned dead = cproxy::test::free_port();
  w.routes("[{\"name\": \"web\", \"port\": " + std::to_string(dead) + "}]");
  const auto text = w.doctor();
  const auto r = w.doctor(true);
  BOOST_TEST(r.code == 1);
  const boost::json::object o = boost::json::parse(r.out).as_object();
  BOOST_TEST(o.at("ok").as_bool() == false);
  BOOST_TEST(o.at("problems").to_number<int>() == 2);
  const auto& checks = o.at("checks").as_array();
  std::vector<std::string> kinds;
  std::string lines;
  for (const auto& c : checks) {
    const auto& e = c.as_object();
    BOOST_TEST(e.size() == 4u);
    kinds.emplace_back(e.at("check").as_string());
    const std::string status(e.at("status").as_string());
    const std::string mark = status == "ok" ? "[ok]" : status == "warn" ? "[!]" : "[x]";
    lines += "  " + mark + " " + std::string(e.at("message").as_string()) +
             (e.at("fix").is_null() ? "" : " — " + std::string(e.at("fix").as_string())) + "\n";
  }
  const std::vector<std::string> want = {"proxy", "upstream", "resolve", "ca", "io", "port"};
  BOOST_TEST(kinds == want, boost::test_tools::per_element());
  BOOST_TEST(checks.at(2).at("status").as_string() == "fail");
  BOOST_TEST(checks.at(2).at("fix").as_string() == "run: connect proxy hosts");
  // The same lines as the printed report, in its order.
  BOOST_TEST(text.out == "🩺 Proxy doctor\n\n" + lines + "\n[x] 2 problem(s) found\n");
}

BOOST_AUTO_TEST_SUITE_END()
