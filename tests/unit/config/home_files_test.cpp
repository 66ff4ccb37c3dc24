// Unit tests for the home folder's safety (issue 10, A1): a home others can write to or that belongs to
// another user is refused, and the files in it (log, config.json, temp files) never follow a symlink.
// Real files in mkdtemp folders; the real home is never touched.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "connect/config/atomic_file.hpp"
#include "connect/config/config_file.hpp"
#include "connect/core/log.hpp"
#include "connect/pki/cert_store.hpp"
#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using cproxy::test::temp_dir;

// PRIVATECONNECT_HOME set for the length of a case, then put back.
class home_override {
 public:
  explicit home_override(const std::string& value) {
    if (const char* old = std::getenv("PRIVATECONNECT_HOME")) old_ = old;
    ::setenv("PRIVATECONNECT_HOME", value.c_str(), 1);
  }
  ~home_override() {
    if (old_) {
      ::setenv("PRIVATECONNECT_HOME", old_->c_str(), 1);
    } else {
      ::unsetenv("PRIVATECONNECT_HOME");
    }
  }
  home_override(const home_override&) = delete;
  home_override& operator=(const home_override&) = delete;

 private:
  std::optional<std::string> old_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A folder `name` in `dir` with exactly `mode` (chmod after mkdir: the umask cannot take bits away).
std::string folder(const temp_dir& dir, const std::string& name, mode_t mode) {
  const std::string path = dir.file(name);
  BOOST_TEST_REQUIRE(::mkdir(path.c_str(), 0700) == 0);
  BOOST_TEST_REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(home_files)

BOOST_AUTO_TEST_CASE(a_home_others_can_write_to_is_refused) {
  temp_dir dir;
  for (const mode_t mode : {mode_t{0777}, mode_t{0770}, mode_t{0702}, mode_t{01777}}) {
    const std::string home = folder(dir, "home" + std::to_string(mode), mode);
    const home_override own(home);
    std::string error;
    BOOST_TEST(!cproxy::control::ensure_home_folder(error), "mode " << std::oct << mode);
    char shown[8];
    std::snprintf(shown, sizeof shown, "%04o", static_cast<unsigned>(mode));
    BOOST_TEST(error == "cannot use the home folder " + home + ": other users can write to it (mode " +
                            shown + ") — run: chmod 700 " + home);
  }
}

BOOST_AUTO_TEST_CASE(a_private_home_and_one_others_can_only_read_are_used) {
  temp_dir dir;
  for (const mode_t mode : {mode_t{0700}, mode_t{0750}, mode_t{0755}}) {
    const std::string home = folder(dir, "home" + std::to_string(mode), mode);
    const home_override own(home);
    std::string error;
    BOOST_TEST(cproxy::control::ensure_home_folder(error), error);
  }
}

BOOST_AUTO_TEST_CASE(a_home_of_another_user_is_refused) {
  temp_dir dir;
  std::string home;
  if (::geteuid() == 0) {
    home = folder(dir, "theirs", 0700);
    BOOST_TEST_REQUIRE(::chown(home.c_str(), 65534, 65534) == 0);
  } else {
    home = "/usr";  // root's, and never ours when we are not root
  }
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(home.c_str(), &st) == 0);
  const home_override own(home);
  std::string error;
  BOOST_TEST(!cproxy::control::ensure_home_folder(error));
  BOOST_TEST(error == "cannot use the home folder " + home + ": it belongs to uid " +
                          std::to_string(st.st_uid) + ", not to uid " + std::to_string(::geteuid()) +
                          " that runs connect — set PRIVATECONNECT_HOME to a folder of your own");
}

BOOST_AUTO_TEST_CASE(a_home_path_with_a_space_is_quoted_in_the_fix) {
  temp_dir dir;
  const std::string home = folder(dir, "my home", 0777);
  const home_override own(home);
  std::string error;
  BOOST_TEST(!cproxy::control::ensure_home_folder(error));
  BOOST_TEST(error.ends_with("— run: chmod 700 '" + home + "'"), error);
}

BOOST_AUTO_TEST_CASE(the_log_is_never_opened_through_a_symlink) {
  temp_dir dir;
  const std::string target = dir.write("target", "");
  const std::string link = dir.file("proxy.log");
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  BOOST_TEST(!cproxy::log::open_file(link));
  cproxy::log::info("a line that must not reach the link's target");
  BOOST_TEST(slurp(target) == "");
}

BOOST_AUTO_TEST_CASE(sighup_never_reopens_the_log_through_a_symlink) {
  temp_dir dir;
  const std::string log = dir.file("proxy.log");
  BOOST_TEST_REQUIRE(cproxy::log::open_file(log));
  cproxy::log::info("before rotation");
  // logrotate's move, then a planted link where the new file would be.
  BOOST_TEST_REQUIRE(::rename(log.c_str(), dir.file("proxy.log.1").c_str()) == 0);
  const std::string target = dir.write("target", "");
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), log.c_str()) == 0);
  BOOST_TEST(!cproxy::log::reopen());
  cproxy::log::info("after the refused reopen");
  BOOST_TEST(slurp(target) == "");
  const std::string old = slurp(dir.file("proxy.log.1"));
  BOOST_TEST(old.find(" info before rotation\n") != std::string::npos, old);
  BOOST_TEST(old.find(" warn cannot reopen " + log +
                      ": Too many levels of symbolic links; still writing to the file opened before\n") !=
                 std::string::npos,
             old);
  BOOST_TEST(old.find(" info after the refused reopen\n") != std::string::npos, old);
  // A real file there again is reopened as before.
  BOOST_TEST_REQUIRE(::unlink(log.c_str()) == 0);
  BOOST_TEST(cproxy::log::reopen());
  cproxy::log::info("in the new file");
  BOOST_TEST(slurp(log).find(" info in the new file\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_atomic_write_never_follows_a_planted_temp_name) {
  temp_dir dir;
  const std::string path = dir.file("proxy-state.json");
  const std::string target = dir.write("target", "kept");
  // The name the old code used (PATH.tmp.PID), planted as a link before the write.
  const std::string planted = path + ".tmp." + std::to_string(::getpid());
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), planted.c_str()) == 0);
  BOOST_TEST(cproxy::control::write_file_atomically(path, "{}\n", 0600) == "");
  BOOST_TEST(slurp(target) == "kept");
  BOOST_TEST(!is_symlink(path));
  BOOST_TEST(slurp(path) == "{}\n");
  BOOST_TEST(is_symlink(planted), "a file the writer did not make is left alone");
  // Nothing else is left behind.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path)) ++files;
  BOOST_TEST(files == 3u);
}

BOOST_AUTO_TEST_CASE(atomic_writes_use_a_new_random_temp_name_each_time) {
  // The names the writer creates, seen through inotify: never PATH.tmp.PID (which another user could
  // plant ahead), never the same twice.
  temp_dir dir;
  const std::string path = dir.file("f");
  const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  BOOST_TEST_REQUIRE(watch >= 0);
  BOOST_TEST_REQUIRE(::inotify_add_watch(watch, dir.path.c_str(), IN_CREATE) >= 0);
  constexpr int writes = 20;
  for (int i = 0; i < writes; ++i) {
    BOOST_TEST_REQUIRE(cproxy::control::write_file_atomically(path, std::to_string(i), 0644) == "");
    BOOST_TEST(slurp(path) == std::to_string(i));
  }
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0644u);
  std::set<std::string> names;
  alignas(inotify_event) char buffer[64 * 1024];
  const ssize_t n = ::read(watch, buffer, sizeof buffer);
  ::close(watch);
  BOOST_TEST_REQUIRE(n > 0);
  for (ssize_t at = 0; at < n;) {
    const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
    names.insert(event->name);
    at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
  }
  BOOST_TEST(names.size() == std::size_t{writes}, "one fresh name per write");
  for (const std::string& name : names) {
    BOOST_TEST(name.starts_with("f.tmp."), name);
    BOOST_TEST(name != "f.tmp." + std::to_string(::getpid()), name);
  }
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path)) ++files;
  BOOST_TEST(files == 1u, "no temp file is left behind");
}

BOOST_AUTO_TEST_CASE(the_home_config_is_never_read_through_a_symlink) {
  temp_dir dir;
  const std::string elsewhere = dir.write("elsewhere.json", R"({"port": 4000})");
  const std::string config = dir.file("config.json");
  BOOST_TEST_REQUIRE(::symlink(elsewhere.c_str(), config.c_str()) == 0);
  const cproxy::control::config_result home = cproxy::control::read_config_file(config, false);
  BOOST_TEST(!home.value.has_value());
  BOOST_TEST(home.error == "config file " + config + ": cannot read: it is a symbolic link");
  // A file the user names on the command line may be a link (dotfile managers make them).
  const cproxy::control::config_result named = cproxy::control::read_config_file(config, true);
  BOOST_TEST_REQUIRE(named.value.has_value(), named.error);
  BOOST_TEST(named.value->port.value_or(0) == 4000u);
}

BOOST_AUTO_TEST_CASE(read_small_file_refuses_a_link_when_asked) {
  temp_dir dir;
  const std::string real = dir.write("real", "text");
  const std::string link = dir.file("link");
  BOOST_TEST_REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  std::string out;
  using cproxy::control::links;
  BOOST_TEST(cproxy::control::read_small_file(link, out, 100, links::refuse) == ELOOP);
  BOOST_TEST(out == "");
  BOOST_TEST(cproxy::control::read_small_file(real, out, 100, links::refuse) == 0);
  BOOST_TEST(out == "text");
  BOOST_TEST(cproxy::control::read_small_file(link, out, 100) == 0);
  BOOST_TEST(out == "text");
}

BOOST_AUTO_TEST_CASE(certs_are_never_read_or_written_through_a_link) {
  temp_dir dir;
  const std::string home = folder(dir, "home", 0700);
  const home_override own(home);
  // A certs folder that is a link to another folder is refused.
  const std::string elsewhere = folder(dir, "elsewhere", 0700);
  BOOST_TEST_REQUIRE(::symlink(elsewhere.c_str(), (home + "/certs").c_str()) == 0);
  cproxy::control::local_ca ca;
  std::string error;
  BOOST_TEST(!cproxy::control::ensure_ca(home, {}, ca, error));
  BOOST_TEST(error == "cannot use " + home + "/certs: it is a symbolic link");
  BOOST_TEST(std::filesystem::is_empty(elsewhere));
  // A good CA reached through links is not used: it is made again in the folder, over the links.
  BOOST_TEST_REQUIRE(::unlink((home + "/certs").c_str()) == 0);
  error.clear();
  BOOST_TEST_REQUIRE(cproxy::control::ensure_ca(elsewhere, {}, ca, error), error);
  const std::string theirs = slurp(elsewhere + "/certs/ca.crt");
  BOOST_TEST_REQUIRE(::mkdir((home + "/certs").c_str(), 0700) == 0);
  for (const char* name : {"/ca.crt", "/ca.key"})
    BOOST_TEST_REQUIRE(::symlink((elsewhere + "/certs" + name).c_str(), (home + "/certs" + name).c_str()) ==
                       0);
  cproxy::control::local_ca mine;
  BOOST_TEST_REQUIRE(cproxy::control::ensure_ca(home, {}, mine, error), error);
  BOOST_TEST(mine.generated);
  BOOST_TEST(mine.regenerated_because == "ca.crt is missing or unreadable");
  BOOST_TEST(!is_symlink(home + "/certs/ca.crt"));
  BOOST_TEST(!is_symlink(home + "/certs/ca.key"));
  BOOST_TEST(slurp(elsewhere + "/certs/ca.crt") == theirs);
}

BOOST_AUTO_TEST_SUITE_END()
