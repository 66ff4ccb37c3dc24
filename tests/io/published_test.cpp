// published<T> under concurrency: one writer publishes snapshots while readers on other threads read;
// every reader sees non-decreasing versions and never a torn snapshot. Not an io test: runs once.
#include "connect/core/published.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "support/run.hpp"
#include "support/unit_test.hpp"

namespace test = cproxy::test;

namespace {

constexpr std::uint64_t versions = 20000;
constexpr int reader_threads = 3;

// Every word is derived from the version: a reader that saw parts of two snapshots would notice.
struct snapshot {
  std::uint64_t version;
  std::array<std::uint64_t, 32> words;
  explicit snapshot(std::uint64_t v) : version(v) {
    for (std::size_t i = 0; i < words.size(); ++i) words[i] = v * 1000003u + i;
  }
  bool whole() const {
    for (std::size_t i = 0; i < words.size(); ++i) {
      if (words[i] != version * 1000003u + i) return false;
    }
    return true;
  }
};

struct reader_report {
  std::uint64_t reads = 0;
  std::uint64_t last = 0;
  std::uint64_t went_back = 0;
  std::uint64_t torn = 0;
  std::uint64_t held_changed = 0;
};

void read_until_last(const cproxy::published<snapshot>* source, const std::atomic<bool>* go,
                     reader_report* out) {
  cproxy::published<snapshot>::reader r(*source);
  const test::deadline d(std::chrono::seconds(30));
  while (!go->load(std::memory_order_acquire) && !d.expired()) std::this_thread::yield();
  std::uint64_t last = 0;
  while (last < versions && !d.expired()) {
    const snapshot& s = r.get();
    ++out->reads;
    if (!s.whole()) ++out->torn;
    if (s.version < last) ++out->went_back;
    last = s.version;
    if ((out->reads & 255) == 0) {
      // A held snapshot stays what it was while later versions are published.
      const std::shared_ptr<const snapshot> held = r.hold();
      const std::uint64_t v = held->version;
      std::this_thread::yield();
      if (held->version != v || !held->whole()) ++out->held_changed;
      const std::shared_ptr<const snapshot> loaded = source->load();
      if (!loaded->whole() || loaded->version < v) ++out->went_back;
    }
  }
  out->last = last;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(published)

BOOST_AUTO_TEST_CASE(readers_see_whole_snapshots_in_order, *boost::unit_test::timeout(120)) {
  cproxy::published<snapshot> source(std::make_shared<const snapshot>(0));
  std::atomic<bool> go{false};
  std::vector<reader_report> reports(reader_threads);
  std::vector<std::thread> readers;
  for (int i = 0; i < reader_threads; ++i) readers.emplace_back(read_until_last, &source, &go, &reports[i]);
  go.store(true, std::memory_order_release);
  for (std::uint64_t v = 1; v <= versions; ++v) source.publish(std::make_shared<const snapshot>(v));
  for (std::thread& t : readers) t.join();

  for (const reader_report& r : reports) {
    BOOST_TEST(r.torn == 0u);
    BOOST_TEST(r.went_back == 0u);
    BOOST_TEST(r.held_changed == 0u);
    BOOST_TEST(r.last == versions, "a reader stopped at version " << r.last);
    BOOST_TEST(r.reads > 0u);
  }
  BOOST_TEST(source.load()->version == versions);
}

BOOST_AUTO_TEST_SUITE_END()
