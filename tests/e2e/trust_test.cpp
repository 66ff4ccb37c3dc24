// `connect proxy trust`, `trust --check` and `untrust` end to end: the real binary, with the system
// store relocated into a fake Debian root (CONNECT_PROXY_TRUST_ROOT) that the real update-ca-certificates
// fills, and NSS databases under a temporary HOME. What the stores hold is checked with the tools
// themselves (openssl verify, certutil -L), not with our code. The machine's own stores are never used.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "child_process.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
namespace fs = std::filesystem;

namespace {

const std::string nickname = "Private Connect Local CA";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

struct tool_result {
  int code = -1;
  std::string output;
};

// Runs a tool (openssl, certutil) from the test itself, stdout and stderr together; 127 if absent.
tool_result run_tool(const std::vector<std::string>& argv) {
  tool_result r;
  int fds[2];
  if (::pipe(fds) != 0) return r;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    r.output.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool have_certutil() {
  return run_tool({"certutil", "-H"}).code != 127;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Sets an environment variable of this process for one case; child_process copies the environment,
// and a variable it appends would come after (and lose to) the inherited one.
class scoped_env {
 public:
  scoped_env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

constexpr uid_t nobody_id = 65534;

// Runs the binary as the user nobody (the test runs as root), stdout and stderr apart; 127 when it
// cannot be started.
run_result run_as_nobody(const std::vector<std::string>& argv) {
  run_result r;
  int out[2];
  int err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) return r;
  std::vector<std::string> all{CONNECT_BINARY};
  all.insert(all.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (const auto& a : all) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody_id) != 0 || ::setuid(nobody_id) != 0) ::_exit(127);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A temporary world: a fake Debian root, a HOME, a PRIVATECONNECT_HOME, all under one temp folder.
struct trust_world {
  std::string base;
  std::string root;
  std::string home;
  std::string pc_home;
  std::optional<scoped_env> env_home, env_pc, env_root;

  explicit trust_world(
      const std::string& os_release = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n") {
    char pattern[] = "/tmp/connect-trust-XXXXXX";
    base = ::mkdtemp(pattern);
    root = base + "/root";
    home = base + "/home";
    pc_home = base + "/pc";
    fs::create_directories(home);
    write_text(root + "/etc/os-release", os_release);
    // What update-ca-certificates reads and writes, as on Debian 12. One other CA is listed, as a real
    // system always has: with no certificate left at all the tool would keep the old bundle.
    for (const char* dir : {"/usr/share/ca-certificates/other", "/usr/local/share/ca-certificates",
                            "/etc/ssl/certs", "/etc/ca-certificates/update.d"})
      fs::create_directories(root + dir);
    write_text(root + "/etc/ca-certificates.conf", "other/other-ca.crt\n");
    const auto made = run_tool({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", base + "/other-ca.key",
                                "-out", root + "/usr/share/ca-certificates/other/other-ca.crt", "-subj",
                                "/CN=Other CA", "-days", "30"});
    BOOST_REQUIRE_MESSAGE(made.code == 0, made.output);
    env_home.emplace("HOME", home);
    env_pc.emplace("PRIVATECONNECT_HOME", pc_home);
    env_root.emplace("CONNECT_PROXY_TRUST_ROOT", root);
  }
  ~trust_world() {
    env_root.reset();
    env_pc.reset();
    env_home.reset();
    std::error_code ec;
    fs::permissions(root + "/usr/local/share/ca-certificates", fs::perms::owner_all, fs::perm_options::add,
                    ec);
    fs::remove_all(base, ec);
  }
  trust_world(const trust_world&) = delete;
  trust_world& operator=(const trust_world&) = delete;

  std::string bundle() const { return root + "/etc/ssl/certs/ca-certificates.crt"; }
  std::string anchor() const {
    return root + "/usr/local/share/ca-certificates/private-connect-local-ca.crt";
  }
  std::string ca() const { return pc_home + "/certs/ca.crt"; }
  std::string nssdb() const { return home + "/.pki/nssdb"; }

  run_result connect(std::vector<std::string> args) const {
    args.insert(args.begin(), "proxy");
    child_process child({.args = args, .extra_env = {}, .refuse_io_uring = false});
    run_result r;
    r.code = child.wait_exit(120s).value_or(-1);
    r.out = child.out();
    r.err = child.err();
    return r;
  }

  // A leaf for api.localhost signed by the CA with the openssl tool, then `openssl verify` against
  // the store's bundle: what curl and every OpenSSL client does.
  tool_result verify_leaf_against_bundle() const {
    const std::string ext = base + "/leaf.ext";
    write_text(ext,
               "subjectAltName=DNS:api.localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
    auto r =
        run_tool({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", base + "/leaf.key", "-subj", "/CN=api.localhost", "-out", base + "/leaf.csr"});
    if (r.code != 0) return r;
    r = run_tool({"openssl", "x509", "-req", "-in", base + "/leaf.csr", "-CA", ca(), "-CAkey",
                  pc_home + "/certs/ca.key", "-CAcreateserial", "-CAserial", base + "/leaf.srl", "-days",
                  "30", "-extfile", ext, "-out", base + "/leaf.crt"});
    if (r.code != 0) return r;
    return run_tool({"openssl", "verify", "-CAfile", bundle(), "-purpose", "sslserver", "-verify_hostname",
                     "api.localhost", base + "/leaf.crt"});
  }

  // certutil -L: the certificates (PEM) under our nickname in one NSS database; empty when none.
  std::string nss_pem(const std::string& dir) const {
    const auto r = run_tool({"certutil", "-L", "-d", "sql:" + dir, "-n", nickname, "-a"});
    return r.code == 0 ? r.output : std::string();
  }
};

const std::string trust_header = "🔒 Trusting Private Connect local CA...\n\n";
const std::string check_header = "🔒 Checking Private Connect local CA...\n\n";
const std::string untrust_header = "🔓 Removing Private Connect local CA...\n\n";
const std::string system_added = "  [ok] CA added to system trust store\n";
const std::string chrome_added = "  [ok] CA added to NSS database ~/.pki/nssdb (Chrome, Chromium)\n";
const std::string trusted_now = "  Browsers will now trust Private Connect HTTPS certificates.\n";
const std::string not_everywhere = "  Not every store trusts the CA yet — see the lines above.\n";

#define REQUIRE_CERTUTIL()                                                             \
  if (!have_certutil()) {                                                              \
    BOOST_TEST_MESSAGE("SKIPPED: certutil is missing (Debian package libnss3-tools)"); \
    return;                                                                            \
  }

}  // namespace

BOOST_AUTO_TEST_SUITE(trust)

BOOST_AUTO_TEST_CASE(trust_fills_the_system_store_and_nssdb_and_check_verifies_them) {
  REQUIRE_CERTUTIL();
  trust_world w;

  const auto before = w.connect({"trust", "--check"});
  BOOST_TEST(before.code == 1);
  BOOST_TEST(before.out == check_header + "  [x] No usable local CA at " + w.ca() + " (missing)\n" +
                               "  Run: connect proxy trust\n");

  const auto trusted = w.connect({"trust"});
  BOOST_TEST(trusted.code == 0, trusted.err);
  BOOST_TEST(trusted.out ==
             trust_header + "  [ok] Generated local CA\n" + system_added + chrome_added + trusted_now);
  BOOST_TEST(trusted.err == "");

  // The anchor is the CA; the bundle update-ca-certificates wrote verifies a leaf of the CA.
  BOOST_TEST(read_text(w.anchor()) == read_text(w.ca()));
  const auto verified = w.verify_leaf_against_bundle();
  BOOST_TEST(verified.code == 0, verified.output);
  // The NSS database lists the CA as a trusted SSL CA.
  const auto listed = run_tool({"certutil", "-L", "-d", "sql:" + w.nssdb()});
  BOOST_TEST(listed.output.find(nickname) != std::string::npos, listed.output);
  BOOST_TEST(listed.output.find("C,,") != std::string::npos, listed.output);
  BOOST_TEST(count_of(w.nss_pem(w.nssdb()), "BEGIN CERTIFICATE") == 1u);

  const auto check = w.connect({"trust", "--check"});
  BOOST_TEST(check.code == 0, check.out);
  BOOST_TEST(check.out == check_header + "  [ok] System trust store trusts the CA\n" +
                              "  [ok] NSS database ~/.pki/nssdb (Chrome, Chromium) trusts the CA\n" +
                              "  Browsers trust Private Connect HTTPS certificates.\n");
}

// A CA file in the home is read as it is: a link planted in its place (here to a copy of the real CA,
// so that following it would pass) is reported, never followed.
BOOST_AUTO_TEST_CASE(check_does_not_follow_a_link_planted_as_the_ca) {
  REQUIRE_CERTUTIL();
  trust_world w;
  BOOST_REQUIRE(w.connect({"trust"}).code == 0);
  const std::string elsewhere = w.ca() + ".elsewhere";
  fs::rename(w.ca(), elsewhere);
  fs::create_symlink(elsewhere, w.ca());

  const auto check = w.connect({"trust", "--check"});
  BOOST_TEST(check.code == 1, check.out);
  BOOST_TEST(check.out == check_header + "  [x] No usable local CA at " + w.ca() +
                              " (it is a symbolic link)\n" + "  Run: connect proxy trust\n");
}

BOOST_AUTO_TEST_CASE(trust_twice_keeps_one_copy) {
  REQUIRE_CERTUTIL();
  trust_world w;
  BOOST_REQUIRE(w.connect({"trust"}).code == 0);
  const std::string ca_pem = read_text(w.ca());

  const auto again = w.connect({"trust"});
  BOOST_TEST(again.code == 0, again.out);
  BOOST_TEST(again.out == trust_header + system_added + chrome_added + trusted_now);
  BOOST_TEST(read_text(w.ca()) == ca_pem);  // the CA was reused, not made again
  BOOST_TEST(count_of(w.nss_pem(w.nssdb()), "BEGIN CERTIFICATE") == 1u);
  BOOST_TEST(count_of(read_text(w.bundle()), ca_pem) == 1u);
}

BOOST_AUTO_TEST_CASE(untrust_removes_what_trust_added) {
  REQUIRE_CERTUTIL();
  trust_world w;
  BOOST_REQUIRE(w.connect({"trust"}).code == 0);

  const auto removed = w.connect({"untrust"});
  BOOST_TEST(removed.code == 0, removed.out);
  BOOST_TEST(removed.out == untrust_header + "  [ok] CA removed from system trust store\n" +
                                "  [ok] CA removed from NSS database ~/.pki/nssdb (Chrome, Chromium)\n" +
                                "  Browsers will no longer trust Private Connect HTTPS certificates.\n");
  BOOST_TEST(!fs::exists(w.anchor()));
  BOOST_TEST(w.verify_leaf_against_bundle().code != 0);
  BOOST_TEST(read_text(w.bundle()).find("BEGIN CERTIFICATE") != std::string::npos);  // the other CA stays
  BOOST_TEST(w.nss_pem(w.nssdb()) == "");

  const auto check = w.connect({"trust", "--check"});
  BOOST_TEST(check.code == 1);
  BOOST_TEST(check.out.starts_with(check_header + "  [x] System trust store does not trust the CA: "),
             check.out);
  BOOST_TEST(
      check.out.ends_with(
          "\n  [x] NSS database ~/.pki/nssdb (Chrome, Chromium) does not trust the CA: not in the database\n"
          "  Run: connect proxy trust\n"),
      check.out);

  const auto again = w.connect({"untrust"});
  BOOST_TEST(again.code == 0, again.out);
  BOOST_TEST(again.out == untrust_header + "  [ok] CA was not in system trust store\n" +
                              "  [ok] CA was not in NSS database ~/.pki/nssdb (Chrome, Chromium)\n" +
                              "  Browsers will no longer trust Private Connect HTTPS certificates.\n");
}

BOOST_AUTO_TEST_CASE(firefox_profiles_get_the_ca_too) {
  REQUIRE_CERTUTIL();
  trust_world w;
  const std::string deb = w.home + "/.mozilla/firefox/abc.default-release";
  const std::string snap = w.home + "/snap/firefox/common/.mozilla/firefox/xyz.default";
  for (const auto& dir : {deb, snap}) {
    fs::create_directories(dir);
    BOOST_REQUIRE(run_tool({"certutil", "-N", "-d", "sql:" + dir, "--empty-password"}).code == 0);
  }
  fs::create_directories(w.home + "/.mozilla/firefox/Crash Reports");  // not a profile: no cert9.db

  const auto trusted = w.connect({"trust"});
  BOOST_TEST(trusted.code == 0, trusted.out);
  BOOST_TEST(trusted.out ==
             trust_header + "  [ok] Generated local CA\n" + system_added + chrome_added +
                 "  [ok] CA added to Firefox profile ~/.mozilla/firefox/abc.default-release\n" +
                 "  [ok] CA added to Firefox profile ~/snap/firefox/common/.mozilla/firefox/xyz.default\n" +
                 trusted_now);
  BOOST_TEST(count_of(w.nss_pem(deb), "BEGIN CERTIFICATE") == 1u);
  BOOST_TEST(count_of(w.nss_pem(snap), "BEGIN CERTIFICATE") == 1u);

  const auto check = w.connect({"trust", "--check"});
  BOOST_TEST(check.code == 0, check.out);
  BOOST_TEST(
      check.out.find("  [ok] Firefox profile ~/.mozilla/firefox/abc.default-release trusts the CA\n") !=
      std::string::npos);

  // A profile that lost the CA makes the check fail, and names that profile.
  BOOST_REQUIRE(run_tool({"certutil", "-D", "-d", "sql:" + deb, "-n", nickname}).code == 0);
  const auto partial = w.connect({"trust", "--check"});
  BOOST_TEST(partial.code == 1);
  BOOST_TEST(
      partial.out.find("  [x] Firefox profile ~/.mozilla/firefox/abc.default-release does not trust the CA: "
                       "not in the database\n") != std::string::npos,
      partial.out);

  BOOST_TEST(w.connect({"untrust"}).code == 0);
  BOOST_TEST(w.nss_pem(snap) == "");
}

BOOST_AUTO_TEST_CASE(unknown_distribution_and_no_certutil_each_get_one_line) {
  trust_world w("ID=gentoo\nNAME=Gentoo\n");
  // A PATH with nothing in it: certutil cannot be found (update-ca-certificates is not needed here).
  fs::create_directories(w.base + "/empty-bin");
  scoped_env path("PATH", w.base + "/empty-bin");
  const auto trusted = w.connect({"trust"});
  BOOST_TEST(trusted.code == 1);  // the system store failed; with no NSS database, no certutil is only a note
  BOOST_TEST(trusted.out ==
             trust_header + "  [ok] Generated local CA\n" +
                 "  [x] System trust store: unknown distribution 'gentoo' (" + w.root +
                 "/etc/os-release) — add " + w.ca() + " to it by hand\n" +
                 "  [!] certutil not found — install libnss3-tools to add the CA to Chrome and Firefox\n" +
                 not_everywhere);
}

BOOST_AUTO_TEST_CASE(other_distributions_name_their_tool) {
  trust_world w("NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
  const auto trusted = w.connect({"trust"});
  BOOST_TEST(trusted.code == 1);
  BOOST_TEST(trusted.out.find("  [x] System trust store: update-ca-trust cannot write under "
                              "CONNECT_PROXY_TRUST_ROOT=" +
                              w.root + "\n") != std::string::npos,
             trusted.out);
  fs::remove(w.root + "/etc/os-release");
  const auto check = w.connect({"trust", "--check"});
  BOOST_TEST(check.code == 1);
  BOOST_TEST(check.out.find("  [x] System trust store: cannot read " + w.root + "/etc/os-release\n") !=
                 std::string::npos,
             check.out);
}

BOOST_AUTO_TEST_CASE(without_permission_prints_the_sudo_command) {
  trust_world w;
  const std::string anchors = w.root + "/usr/local/share/ca-certificates";
  fs::permissions(anchors, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                               fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  run_result trusted;
  if (::access(anchors.c_str(), W_OK) != 0) {
    trusted = w.connect({"trust"});
  } else {
    // Root writes anywhere: run the binary as nobody instead, in folders nobody may use.
    fs::permissions(w.base, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
    fs::create_directories(w.pc_home);
    if (::chown(w.pc_home.c_str(), nobody_id, nobody_id) != 0 ||
        ::chown(w.home.c_str(), nobody_id, nobody_id) != 0) {
      BOOST_TEST_MESSAGE("SKIPPED without_permission_prints_the_sudo_command: cannot hand folders to nobody");
      return;
    }
    trusted = run_as_nobody({"proxy", "trust"});
    if (trusted.code == 127) {
      BOOST_TEST_MESSAGE("SKIPPED without_permission_prints_the_sudo_command: nobody cannot run "
                         << CONNECT_BINARY << ": " << trusted.err);
      return;
    }
  }
  BOOST_TEST(trusted.code == 1, trusted.err);
  const std::string r = w.root;
  BOOST_TEST(
      trusted.out.starts_with(trust_header + "  [ok] Generated local CA\n" +
                              "  [!] System trust store needs root — run: sudo cp " + w.ca() + " " +
                              w.anchor() + " && sudo update-ca-certificates --certsconf " + r +
                              "/etc/ca-certificates.conf --certsdir " + r +
                              "/usr/share/ca-certificates --localcertsdir " + anchors + " --etccertsdir " +
                              r + "/etc/ssl/certs --hooksdir " + r + "/etc/ca-certificates/update.d\n"),
      trusted.out);
  BOOST_TEST(trusted.out.ends_with(not_everywhere), trusted.out);
  BOOST_TEST(!fs::exists(w.anchor()));
  if (have_certutil()) BOOST_TEST(trusted.out.find(chrome_added) != std::string::npos, trusted.out);
}

BOOST_AUTO_TEST_SUITE_END()
