// connect/platform/file_watch.hpp on a temp folder: the watch turns readable and reports a change for
// the file it watches (written, replaced by rename, deleted), not for a neighbour in the same folder.
#include "connect/platform/file_watch.hpp"

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

using namespace std::chrono_literals;

namespace {

// Polls the watch until fd() turns readable (bounded), then asks changed().
bool changed_within(cproxy::platform::file_watch& w, std::chrono::milliseconds limit) {
  pollfd p{w.fd(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
  return w.changed();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(platform_file_watch)

BOOST_AUTO_TEST_CASE(changes_of_the_file_are_seen_and_a_neighbour_is_not) {
  cproxy::test::temp_dir dir("connect-platform");
  const std::string path = dir.file("active-routes.json");
  std::string error;
  auto watch = cproxy::platform::watch_file(path, 50ms, error);
  BOOST_TEST_REQUIRE(watch != nullptr, error);
  BOOST_TEST(watch->fd() >= 0);
  BOOST_TEST(watch->next_check() == std::chrono::milliseconds::max());  // armed: nothing to poll

  dir.write("other.json", "{}");
  pollfd p{watch->fd(), POLLIN, 0};
  BOOST_TEST_REQUIRE(::poll(&p, 1, 5000) == 1);  // the folder's event arrives...
  BOOST_TEST(!watch->changed());                 // ...and is not the watched file's

  dir.write("active-routes.json", "[]");
  BOOST_TEST(changed_within(*watch, 5s));

  // Atomic replacement, as the writers of the file do it.
  dir.write("next.tmp", "[1]");
  BOOST_TEST_REQUIRE(std::rename(dir.file("next.tmp").c_str(), path.c_str()) == 0);
  BOOST_TEST(changed_within(*watch, 5s));

  BOOST_TEST_REQUIRE(std::remove(path.c_str()) == 0);
  BOOST_TEST(changed_within(*watch, 5s));
}

BOOST_AUTO_TEST_CASE(a_missing_folder_is_looked_for_again) {
  cproxy::test::temp_dir dir("connect-platform");
  std::string error;
  auto watch = cproxy::platform::watch_file(dir.file("later/active-routes.json"), 20ms, error);
  BOOST_TEST_REQUIRE(watch != nullptr, error);
  BOOST_TEST(watch->next_check() <= 20ms);  // not armed: it wants asking again soon
  std::filesystem::create_directory(dir.file("later"));
  bool seen = false;
  for (int tries = 0; tries < 250 && !seen; ++tries) {  // 5 s at most
    ::poll(nullptr, 0, 20);
    seen = watch->changed();
  }
  BOOST_TEST(seen);
  BOOST_TEST(watch->next_check() == std::chrono::milliseconds::max());
}

BOOST_AUTO_TEST_SUITE_END()
