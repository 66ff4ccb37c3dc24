// `connect proxy hosts [--remove]` end to end: the real binary with PRIVATECONNECT_HOME and HOSTS_FILE
// in a temporary folder (the machine's /etc/hosts is never named). The block added, kept, replaced and
// removed with the rest of the file byte for byte; links, read-only files and broken markers refused
// with the documented texts; concurrent runs; getent resolving the names afterwards.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "isolated_home.hpp"
#include "run_program.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
using cproxy::test::isolated_home;
using cproxy::test::program_result;
using cproxy::test::run_program;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A home with two config routes and a hosts file of its own.
struct hosts_home {
  isolated_home h;
  std::string etc = h.home.path + "/etc";
  std::string file = etc + "/hosts";
  hosts_home(
      const std::string& hosts_text = "127.0.0.1\tlocalhost\n# keep me \n::1 localhost ip6-localhost\n") {
    fs::create_directories(etc);
    write_text(file, hosts_text);
    write_text(h.home.path + "/config.json",
               R"({"routes": [{"name": "web", "port": 5173}, {"name": "api", "port": 8080}]})");
  }
  std::vector<std::string> env() const {
    auto e = h.env();
    e.push_back("HOSTS_FILE=" + file);
    return e;
  }
  program_result hosts(std::vector<std::string> extra = {}, bool as_nobody = false) const {
    std::vector<std::string> argv = {CONNECT_BINARY, "proxy", "hosts"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_program(argv, env(), as_nobody);
  }
};

const std::string two_names =
    "# connect-proxy begin\n127.0.0.1 api.localhost\n127.0.0.1 web.localhost\n# connect-proxy end\n";

ino_t inode_of(const std::string& path) {
  struct stat st {};
  ::lstat(path.c_str(), &st);
  return st.st_ino;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hosts_command)

BOOST_AUTO_TEST_CASE(adds_the_block_keeps_mode_and_is_idempotent) {
  hosts_home w;
  const std::string before = read_text(w.file);
  ::chmod(w.file.c_str(), 0640);
  const auto first = w.hosts();
  BOOST_TEST(first.code == 0);
  BOOST_TEST(first.err == "");
  BOOST_TEST(first.out == "[ok] Wrote 2 name(s) to " + w.file +
                              ":\n  127.0.0.1 api.localhost\n  127.0.0.1 web.localhost\n");
  BOOST_TEST(read_text(w.file) == before + two_names);
  struct stat st {};
  ::stat(w.file.c_str(), &st);
  BOOST_TEST((st.st_mode & 07777) == 0640u);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(w.etc)) left.push_back(entry.path().filename().string());
  BOOST_TEST(left == std::vector<std::string>{"hosts"}, boost::test_tools::per_element());  // no temp file

  const ino_t written = inode_of(w.file);
  const auto second = w.hosts();
  BOOST_TEST(second.code == 0);
  BOOST_TEST(second.out == "[ok] Up to date: 2 name(s) in " + w.file +
                               ":\n  127.0.0.1 api.localhost\n  127.0.0.1 web.localhost\n");
  BOOST_TEST(inode_of(w.file) == written);  // not rewritten
  BOOST_TEST(read_text(w.file) == before + two_names);
}

BOOST_AUTO_TEST_CASE(remove_restores_a_crlf_file_without_a_final_line_end_byte_for_byte) {
  const std::string original = "127.0.0.1 localhost\r\n# no final line end";
  hosts_home w(original);
  BOOST_TEST(w.hosts().code == 0);
  BOOST_TEST(read_text(w.file) ==
             original +
                 "\r\n# connect-proxy begin\r\n127.0.0.1 api.localhost\r\n127.0.0.1 web.localhost\r\n"
                 "# connect-proxy end");
  const auto removed = w.hosts({"--remove"});
  BOOST_TEST(removed.code == 0);
  BOOST_TEST(removed.out == "[ok] Removed the connect-proxy block from " + w.file + "\n");
  BOOST_TEST(read_text(w.file) == original);
  const auto again = w.hosts({"--remove"});
  BOOST_TEST(again.code == 0);
  BOOST_TEST(again.out == "[!] " + w.file + " has no connect-proxy block\n");
  BOOST_TEST(read_text(w.file) == original);
}

BOOST_AUTO_TEST_CASE(changed_routes_replace_the_block_where_it_stands) {
  hosts_home w;
  BOOST_TEST(w.hosts().code == 0);
  write_text(w.file, read_text(w.file) + "10.0.0.1 after.example\n");
  write_text(w.h.home.path + "/active-routes.json",
             R"({"version": 1, "routes": [{"serviceName": "db", "localPort": 5432}]})");
  const auto r = w.hosts({"--domain", "test"});
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out == "[ok] Wrote 6 name(s) to " + w.file +
                          ":\n  127.0.0.1 api.localhost\n  127.0.0.1 api.test\n  127.0.0.1 db.localhost\n"
                          "  127.0.0.1 db.test\n  127.0.0.1 web.localhost\n  127.0.0.1 web.test\n");
  BOOST_TEST(read_text(w.file) ==
             "127.0.0.1\tlocalhost\n# keep me \n::1 localhost ip6-localhost\n# connect-proxy begin\n"
             "127.0.0.1 api.localhost\n127.0.0.1 api.test\n127.0.0.1 db.localhost\n127.0.0.1 db.test\n"
             "127.0.0.1 web.localhost\n127.0.0.1 web.test\n# connect-proxy end\n10.0.0.1 after.example\n");
}

BOOST_AUTO_TEST_CASE(no_routes_means_no_block) {
  hosts_home w;
  const std::string before = read_text(w.file);
  fs::remove(w.h.home.path + "/config.json");
  const auto r = w.hosts();
  BOOST_TEST(r.code == 0);
  BOOST_TEST(r.out == "[!] No routes yet — " + w.file + " has no connect-proxy block\n");
  BOOST_TEST(read_text(w.file) == before);
}

BOOST_AUTO_TEST_CASE(a_symbolic_link_is_refused_and_its_target_untouched) {
  hosts_home w;
  const std::string target = w.etc + "/real-hosts";
  fs::rename(w.file, target);
  const std::string before = read_text(target);
  fs::create_symlink(target, w.file);
  const auto r = w.hosts();
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.out == "");
  BOOST_TEST(r.err == "[x] Cannot write " + w.file + ": it is a symbolic link to " + target + "\n");
  BOOST_TEST(fs::is_symlink(w.file));
  BOOST_TEST(read_text(target) == before);
}

BOOST_AUTO_TEST_CASE(a_half_marked_block_is_refused) {
  const std::string original = "127.0.0.1 localhost\n# connect-proxy begin\n127.0.0.1 mine.localhost\n";
  hosts_home w(original);
  const auto r = w.hosts();
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err ==
             "[x] " + w.file +
                 ": line 2 has \"# connect-proxy begin\" without \"# connect-proxy end\" after it — not "
                 "changed; fix the connect-proxy lines by hand\n");
  BOOST_TEST(read_text(w.file) == original);
}

BOOST_AUTO_TEST_CASE(a_file_this_user_may_not_write_gives_the_sudo_command) {
  hosts_home w;
  const bool root = ::geteuid() == 0;
  // As root every file is writable: the binary then runs as nobody, in a home that nobody owns.
  if (root) {
    for (const auto& entry : fs::recursive_directory_iterator(w.h.home.path))
      BOOST_REQUIRE(::lchown(entry.path().c_str(), cproxy::test::nobody_uid, cproxy::test::nobody_uid) == 0);
    BOOST_REQUIRE(::chown(w.h.home.path.c_str(), cproxy::test::nobody_uid, cproxy::test::nobody_uid) == 0);
    BOOST_REQUIRE(::chown(w.file.c_str(), 0, 0) == 0);
    ::chmod(w.file.c_str(), 0644);
  } else {
    ::chmod(w.file.c_str(), 0444);
  }
  const std::string before = read_text(w.file);
  const auto r = w.hosts({}, root);
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.out == "");
  BOOST_TEST(r.err == "[x] Cannot write " + w.file +
                          ": Permission denied\n  Run: sudo env PRIVATECONNECT_HOME=" + w.h.home.path +
                          " HOSTS_FILE=" + w.file + " " + CONNECT_BINARY + " proxy hosts\n");
  const auto removal = w.hosts({"--remove"}, root);
  BOOST_TEST(removal.code == 0);  // nothing to remove: nothing to write
  BOOST_TEST(read_text(w.file) == before);
}

BOOST_AUTO_TEST_CASE(concurrent_runs_never_corrupt_the_file) {
  hosts_home w;
  const std::string before = read_text(w.file);
  std::vector<std::unique_ptr<child_process>> runs;
  for (int i = 0; i < 8; ++i) {
    std::vector<std::string> args = {"proxy", "hosts"};
    if (i % 2) args.push_back("--remove");
    runs.push_back(
        std::make_unique<child_process>(cproxy::test::spawn_options{.args = args, .extra_env = w.env()}));
  }
  for (auto& run : runs) BOOST_TEST(run->wait_exit(30s).value_or(-1) == 0);
  const std::string after = read_text(w.file);
  BOOST_TEST((after == before || after == before + two_names));
  BOOST_TEST(w.hosts().code == 0);
  BOOST_TEST(read_text(w.file) == before + two_names);
}

BOOST_AUTO_TEST_CASE(a_mount_point_is_rewritten_in_place) {
  // As Docker bind-mounts /etc/hosts: rename over a mount point fails with EBUSY, so the file is
  // rewritten in place. The mount lives in a namespace of the run alone; `source` is what it shows.
  hosts_home w;
  const std::string source = w.etc + "/mounted-hosts";
  const std::string original = "127.0.0.1 localhost\n# from the container runtime\n";
  write_text(source, original);
  const std::vector<std::string> in_namespace = {"unshare",
                                                 ::geteuid() == 0 ? "-m" : "-rm",
                                                 "sh",
                                                 "-c",
                                                 "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                                                 "sh",
                                                 source,
                                                 w.file,
                                                 CONNECT_BINARY,
                                                 "proxy",
                                                 "hosts"};
  const auto probe = run_program({"unshare", ::geteuid() == 0 ? "-m" : "-rm", "true"}, {});
  if (probe.code != 0) {
    BOOST_TEST_MESSAGE("SKIPPED a_mount_point_is_rewritten_in_place: no mount namespace here: " << probe.err);
    return;
  }
  const ino_t inode = inode_of(source);
  const auto r = run_program(in_namespace, w.env());
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "[ok] Wrote 2 name(s) to " + w.file +
                          ":\n  127.0.0.1 api.localhost\n  127.0.0.1 web.localhost\n");
  BOOST_TEST(read_text(source) == original + two_names);
  BOOST_TEST(inode_of(source) == inode);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(w.etc)) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  BOOST_TEST(left == (std::vector<std::string>{"hosts", "mounted-hosts"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(getent_resolves_the_names_afterwards) {
  hosts_home w;
  const std::string nsswitch = w.etc + "/nsswitch.conf";
  write_text(nsswitch, "hosts: files\n");
  const auto probe = run_program(cproxy::test::in_resolver_namespace(w.file, nsswitch, {"true"}), {});
  if (probe.code != 0) {
    BOOST_TEST_MESSAGE(
        "SKIPPED getent_resolves_the_names_afterwards: no mount namespace here: " << probe.err);
    return;
  }
  const auto before = run_program(
      cproxy::test::in_resolver_namespace(w.file, nsswitch, {"getent", "hosts", "api.localhost"}), {});
  BOOST_TEST(before.code == 2);  // not found
  BOOST_TEST(w.hosts().code == 0);
  const auto after = run_program(
      cproxy::test::in_resolver_namespace(w.file, nsswitch, {"getent", "hosts", "api.localhost"}), {});
  BOOST_TEST(after.code == 0);
  BOOST_TEST(after.out == "127.0.0.1       api.localhost\n");
}

BOOST_AUTO_TEST_SUITE_END()
