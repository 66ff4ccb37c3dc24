// A real browser over HTTPS: headless Chromium loads https://api.localhost:PORT/ from
// `connect proxy start --https`. With the local CA put into the browser's NSS database by
// `connect proxy trust` (HOME and the trust root relocated to temp folders) the upstream's page appears;
// in a HOME without trust the load fails with ERR_CERT_AUTHORITY_INVALID and the upstream sees no
// request. With trust, a page of 300 ES modules comes over HTTP/2 (ALPN h2), each module as its own
// stream: the page's Resource Timing entries say so in its DOM, and the access lines end in h2.
// Skipped, with the reason on stderr, when no Chromium is installed.
//
// How Chromium is driven (measured with Chromium 156 on Debian 12, as root, no display, no D-Bus):
// - `chromium --headless --no-sandbox --disable-gpu ... --user-data-dir=DIR --dump-dom URL` prints the
//   DOM after the load and exits 0, in about 0.6-1.5 s. On a failed load it prints nothing, still exits
//   0, and logs "Page load failed: net::ERR_CERT_AUTHORITY_INVALID" (and "net_error -202") on stderr
//   without --enable-logging, so the test reads both streams. `--headless=old` behaves the same (the old
//   headless mode is no longer in the chromium binary).
// - NSS user roots ("C,," trust) are honoured in headless mode. Chromium reads ~/.pki/nssdb when that
//   folder exists, else $XDG_DATA_HOME/pki/nssdb (~/.local/share/pki/nssdb), which a first run creates;
//   so the trusted case runs twice: after a first run made the XDG database, and with a ~/.pki/nssdb.
// - It logs a dozen "dbus/bus.cc ... Failed to connect to the bus" errors when no bus runs; harmless,
//   and left out of the messages below. Debian's /usr/bin/chromium wrapper adds extension flags from
//   /etc/chromium.d, so the real binary in /usr/lib/chromium is run when it is there
//   (CONNECT_TEST_CHROMIUM overrides the choice).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "proxy_home.hpp"
#include "support/child_pipes.hpp"
#include "support/posix_server.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

using namespace std::chrono_literals;
using cproxy::test::child_process;
using cproxy::test::temp_dir;
namespace bdata = boost::unit_test::data;

namespace {

using steady = std::chrono::steady_clock;

// The text only the upstream's page holds: seen in the DOM, the request went through the proxy.
constexpr const char* page_marker = "served by the upstream behind connect-proxy (browser-test-5e1b)";

// Each Chromium run gets this long; it takes under 2 s when all is well.
constexpr auto browser_deadline = 60s;
// The ES modules of the HTTP/2 page.
constexpr int module_count = 300;

// --- Programs other than `connect` ------------------------------------------------------------------

bool executable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0;
}

std::string on_path(const std::string& name) {
  const char* path = ::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && executable(dir + "/" + name)) return dir + "/" + name;
  }
  return {};
}

// CONNECT_TEST_CHROMIUM, else Debian's real binary, else the usual names on PATH; empty if none.
const std::string& chromium_path() {
  static const std::string path = [] {
    if (const char* chosen = ::getenv("CONNECT_TEST_CHROMIUM"); chosen && *chosen) return std::string(chosen);
    if (executable("/usr/lib/chromium/chromium")) return std::string("/usr/lib/chromium/chromium");
    for (const char* name : {"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}) {
      if (std::string found = on_path(name); !found.empty()) return found;
    }
    return std::string();
  }();
  return path;
}

// A Boost.Test precondition: false (the suite is reported "skipped") without a Chromium to run. Boost logs
// skips only at --log_level=test_suite, so say it on stderr too.
boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id id) {
  if (executable(chromium_path())) return true;
  const std::string why =
      chromium_path().empty()
          ? "no Chromium found (the Debian package chromium: toolchains/setup-deps.sh test)"
          : "CONNECT_TEST_CHROMIUM=" + chromium_path() + " is not an executable file";
  const auto& tu = boost::unit_test::framework::get(id, boost::unit_test::TUT_ANY);
  std::cerr << "*** SKIPPED " << tu.full_name() << ": " << why << '\n';
  boost::test_tools::assertion_result skip(false);
  skip.message() << why;
  return skip;
}

struct program_result {
  int status = -1;         // exit code or 128 + signal
  bool timed_out = false;  // killed at the deadline
  std::string out, err;
  std::chrono::milliseconds took{0};
};

// Runs argv (argv[0] a path) with the test's environment minus `unset`, plus `set` (replacing what it
// names), output captured. The child leads its own process group: at the deadline it is killed by its
// pid, and whatever it started that still holds the pipes 5 s later, by that group's id.
program_result run_program(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& set,
                           const std::vector<std::string>& unset, std::chrono::milliseconds deadline) {
  const auto start = steady::now();
  const auto until = start + deadline;
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (set.count(name) || std::find(unset.begin(), unset.end(), name) != unset.end()) continue;
    env.push_back(entry);
  }
  for (const auto& [name, value] : set) env.push_back(name + "=" + value);
  std::vector<char*> c_env;
  for (auto& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  BOOST_TEST_REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  BOOST_TEST_REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(c_args[0], c_args.data(), c_env.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here, so the group exists whichever runs first
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  program_result result;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  bool group_killed = false;
  auto limit = until;
  while (fds[0] >= 0 || fds[1] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - steady::now()).count();
    if (left <= 0) {
      if (!result.timed_out) {
        result.timed_out = true;
        ::kill(pid, SIGKILL);  // not reaped yet, so the pid and its group id are still this child's
        limit = steady::now() + 5s;
        continue;
      }
      if (group_killed) break;
      ::kill(-pid, SIGKILL);
      group_killed = true;
      limit = steady::now() + 5s;
      continue;
    }
    cproxy::test::read_child_pipes(fds, std::chrono::milliseconds(left), result.out, result.err);
  }
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
  return result;
}

// Chromium's stderr without its D-Bus complaints.
std::string without_dbus_noise(const std::string& err) {
  std::string kept;
  std::stringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("dbus/") == std::string::npos) kept += line + '\n';
  }
  return kept;
}

// A user's HOME in a temp folder, and Chromium run as that user.
class browser_user {
 public:
  browser_user() : home_("connect-browser-home") {}
  const std::string& home() const { return home_.path; }

  // Loads `url` headless and returns what --dump-dom printed and what Chromium logged.
  program_result load(const std::string& url) {
    const std::string profile = home() + "/profile-" + std::to_string(++runs_);
    program_result r = run_program(
        {chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--user-data-dir=" + profile,
         "--dump-dom", url},
        {{"HOME", home()}}, {"XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"},
        browser_deadline);
    BOOST_TEST_MESSAGE("chromium " << url << ": exit " << r.status
                                   << (r.timed_out ? " (killed at the deadline)" : "") << " after "
                                   << r.took.count() << " ms, " << r.out.size() << " bytes of DOM");
    BOOST_TEST(!r.timed_out, "chromium did not finish within the deadline; stderr:\n"
                                 << without_dbus_noise(r.err));
    return r;
  }

 private:
  temp_dir home_;
  int runs_ = 0;
};

// --- The upstream: one HTML page ---------------------------------------------------------------------

class html_upstream {
 public:
  unsigned port() const { return server_.port(); }
  // The request lines received so far, one per line.
  std::string requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  std::string answer(const std::string& request) {
    const std::string line = request.substr(0, request.find("\r\n"));
    {
      std::lock_guard lock(mutex_);
      requests_ += line + '\n';
    }
    if (line.starts_with("GET /modules ") || line.starts_with("GET /m/")) return module_answer(line);
    const std::string page =
        std::string("<!DOCTYPE html><html><head><title>browser test</title></head><body><h1>") + page_marker +
        "</h1></body></html>\n";
    const bool root = line.starts_with("GET / ");
    const std::string body = root ? page : std::string("not found\n");
    return std::string(root ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
           "Content-Type: text/html; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  }

  // /modules: a page importing module_count ES modules (/m/N.js), as an unbundled dev server serves
  // them, that writes into its DOM how many of them, and the page itself, came over HTTP/2
  // (Resource Timing's nextHopProtocol).
  static std::string module_answer(const std::string& line) {
    std::string body;
    std::string type = "text/javascript";
    if (line.starts_with("GET /modules ")) {
      type = "text/html; charset=utf-8";
      body =
          "<!DOCTYPE html><html><head><title>modules</title>"
          "<script>performance.setResourceTimingBufferSize(10000);</script></head><body>"
          "<script type=\"module\">\n";
      for (int i = 0; i < module_count; ++i)
        body += "import m" + std::to_string(i) + " from '/m/" + std::to_string(i) + ".js';\n";
      body +=
          "const mods = performance.getEntriesByType('resource').filter(e => e.name.includes('/m/'));\n"
          "const h2 = mods.filter(e => e.nextHopProtocol === 'h2').length;\n"
          "const page = performance.getEntriesByType('navigation')[0].nextHopProtocol;\n"
          "document.body.insertAdjacentHTML('beforeend', '<p>modules ' + mods.length + ' over h2 ' + h2 +"
          " ' page ' + page + ' last ' + m" +
          std::to_string(module_count - 1) +
          " + '</p>');\n"
          "</script></body></html>\n";
    } else {
      const std::string n = line.substr(7, line.find(".js") - 7);
      body = "export default " + n + ";\n";
    }
    return "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  }

  mutable std::mutex mutex_;
  std::string requests_;
  // Last: its thread, which calls answer(), stops before the members above go.
  cproxy::test::request_head_server server_{[this](const std::string& request) { return answer(request); }};
};

// --- The proxy ---------------------------------------------------------------------------------------

// `connect proxy start --https --foreground` in its own PRIVATECONNECT_HOME, with the route api -> the
// upstream in active-routes.json. Stopped with SIGTERM at the end.
class https_proxy {
 public:
  explicit https_proxy(unsigned upstream_port) {
    std::ofstream(home_.path + "/active-routes.json")
        << R"({"version": 1, "routes": [{"serviceName": "api", "localPort": )" << upstream_port << "}]}";
    proxy_.emplace(cproxy::test::spawn_options{
        .args = {"proxy", "start", "--https", "--foreground", "--port", "0", "--threads", "1"},
        .extra_env = {home_.env()},
        .refuse_io_uring = false});
    BOOST_TEST_REQUIRE(proxy_->wait_for_stdout("Press Ctrl+C to stop", 30s),
                       "the proxy did not start; stdout:\n"
                           << proxy_->out() << "stderr:\n"
                           << proxy_->err());
    port_ = cproxy::test::running_port(proxy_->out());
    BOOST_TEST_REQUIRE(port_ != 0u, proxy_->out());
    BOOST_TEST_MESSAGE("proxy started:\n" << proxy_->out());
  }
  ~https_proxy() {
    proxy_->signal(SIGTERM);
    BOOST_TEST(proxy_->wait_exit(20s).value_or(-1) == 0, proxy_->err());
  }
  https_proxy(const https_proxy&) = delete;
  https_proxy& operator=(const https_proxy&) = delete;

  const std::string& home() const { return home_.path; }
  std::string url() const { return "https://api.localhost:" + std::to_string(port_) + "/"; }
  std::string log() { return proxy_->err(); }

 private:
  cproxy::test::proxy_home home_;
  std::optional<child_process> proxy_;
  unsigned port_ = 0;
};

// `connect proxy trust` for `user`: HOME is the user's, the system store lives under an empty temp root
// (CONNECT_PROXY_TRUST_ROOT: no os-release there, so that line is an [x] and the exit code 1); only the
// NSS database matters here, so its line is checked (the exact text of docs/control-plane.md).
// `nssdb`: the database the NSS line must name (~/.pki/nssdb, or the XDG one a first run made).
void trust(const https_proxy& proxy, const browser_user& user, const std::string& trust_root,
           const std::string& nssdb) {
  const program_result r = run_program({CONNECT_BINARY, "proxy", "trust"},
                                       {{"HOME", user.home()},
                                        {"PRIVATECONNECT_HOME", proxy.home()},
                                        {"CONNECT_PROXY_TRUST_ROOT", trust_root}},
                                       {"XDG_DATA_HOME", "XDG_CONFIG_HOME"}, 60s);
  BOOST_TEST_MESSAGE("connect proxy trust: exit " << r.status << "\n" << r.out << r.err);
  BOOST_TEST(!r.timed_out);
  BOOST_TEST(
      r.out.find("\n  [ok] CA added to NSS database " + nssdb + " (Chrome, Chromium)\n") != std::string::npos,
      "connect proxy trust printed:\n"
          << r.out << r.err);
}

bool shows_page(const program_result& r) {
  return r.out.find(page_marker) != std::string::npos;
}
bool certificate_refused(const program_result& r) {
  return r.err.find("ERR_CERT_AUTHORITY_INVALID") != std::string::npos;
}

// Where the user's browser keeps its NSS database when `trust` runs: "xdg", the one a first run of this
// Chromium makes (~/.local/share/pki/nssdb), or "legacy", ~/.pki/nssdb as older Chromium versions made it
// (made here with certutil; Chromium prefers it when it exists).
const std::string nssdb_kinds[] = {"xdg", "legacy"};

}  // namespace

BOOST_AUTO_TEST_SUITE(browser,
                      *boost::unit_test::precondition(&chromium_installed) * boost::unit_test::timeout(300))

BOOST_DATA_TEST_CASE(trusted_ca_loads_the_page, bdata::make(nssdb_kinds), nssdb) {
  html_upstream upstream;
  https_proxy proxy(upstream.port());
  browser_user user;
  temp_dir trust_root("connect-browser-trust-root");

  if (nssdb == "legacy") {
    std::filesystem::create_directories(user.home() + "/.pki/nssdb");
    const std::string certutil = on_path("certutil");
    BOOST_TEST_REQUIRE(!certutil.empty(), "certutil is missing (Debian: libnss3-tools)");
    const program_result made = run_program(
        {certutil, "-N", "-d", "sql:" + user.home() + "/.pki/nssdb", "--empty-password"}, {}, {}, 30s);
    BOOST_TEST_REQUIRE(made.status == 0, made.err);
  }
  // Before trust: the certificate is refused (a first run also makes the browser's NSS database, as it
  // does for a user who has opened it once).
  const program_result before = user.load(proxy.url());
  BOOST_TEST(!shows_page(before));
  BOOST_TEST(certificate_refused(before), "stderr:\n" << without_dbus_noise(before.err));

  trust(proxy, user, trust_root.path, nssdb == "legacy" ? "~/.pki/nssdb" : "~/.local/share/pki/nssdb");
  BOOST_TEST(std::filesystem::exists(user.home() + "/.pki/nssdb") == (nssdb == "legacy"),
             "trust must not make ~/.pki/nssdb beside the browser's XDG database");

  const program_result after = user.load(proxy.url());
  BOOST_TEST(shows_page(after), "DOM:\n"
                                    << after.out << "\nstderr:\n"
                                    << without_dbus_noise(after.err) << "\nupstream saw:\n"
                                    << upstream.requests() << "proxy log:\n"
                                    << proxy.log());
  BOOST_TEST(!certificate_refused(after));
}

// product.md, HTTP/2: a browser gets h2 by ALPN, and a dev server's unbundled modules all come over it.
BOOST_AUTO_TEST_CASE(a_page_of_300_modules_loads_them_all_over_h2) {
  html_upstream upstream;
  https_proxy proxy(upstream.port());
  browser_user user;
  temp_dir trust_root("connect-browser-trust-root");
  user.load(proxy.url());  // the first run makes the browser's NSS database, which trust then fills
  trust(proxy, user, trust_root.path, "~/.local/share/pki/nssdb");

  const program_result r = user.load(proxy.url() + "modules");
  const std::string expected = "modules " + std::to_string(module_count) + " over h2 " +
                               std::to_string(module_count) + " page h2 last " +
                               std::to_string(module_count - 1);
  BOOST_TEST(r.out.find(expected) != std::string::npos,
             "expected \"" << expected << "\" in the DOM:\n"
                           << r.out.substr(r.out.rfind("<p>") == std::string::npos ? 0 : r.out.rfind("<p>"))
                           << "\nstderr:\n"
                           << without_dbus_noise(r.err));
  // The proxy's access lines for them say h2 (read until all are in: the log arrives through a pipe).
  const auto h2_lines = [&] {
    std::size_t n = 0;
    const std::string log = proxy.log();
    for (std::size_t at = log.find(".js 200 "); at != std::string::npos; at = log.find(".js 200 ", at + 1)) {
      const std::size_t end = log.find('\n', at);
      if (end != std::string::npos && log.substr(at, end - at).ends_with("ms h2")) ++n;
    }
    return n;
  };
  const auto until = steady::now() + 10s;
  while (h2_lines() < static_cast<std::size_t>(module_count) && steady::now() < until)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(h2_lines() == static_cast<std::size_t>(module_count), proxy.log().substr(0, 2000));
}

BOOST_AUTO_TEST_CASE(untrusted_ca_shows_a_certificate_error) {
  html_upstream upstream;
  https_proxy proxy(upstream.port());
  browser_user user;

  const program_result r = user.load(proxy.url());
  BOOST_TEST(!shows_page(r), "the page loaded without trust; DOM:\n" << r.out);
  BOOST_TEST(certificate_refused(r), "expected net::ERR_CERT_AUTHORITY_INVALID; stderr:\n"
                                         << without_dbus_noise(r.err));
  BOOST_TEST(upstream.requests() == "", "the upstream was reached: " << upstream.requests());
}

BOOST_AUTO_TEST_SUITE_END()
