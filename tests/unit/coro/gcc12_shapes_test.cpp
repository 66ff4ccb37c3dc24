// Pins the co_await operand shapes this tree relies on against GCC 12's coroutine bugs: each callee
// really suspends, so the temporaries of the awaiting full-expression must survive it. A miscompiled
// shape fails by the instance tracker, by the result, or under ASan (strings are heap allocated).
//
// Broken on GCC 12.2, NOT executed here (they crash or destroy what was never constructed):
//   PR 101976 (dups 99576, 100611, 101367): a temporary initialising a sub-object in the operand:
//     co_await f(opts{make_string(), 1}); co_await f(wrapper{}); co_await f({});
//     co_await nontrivial_awaiter{}; co_await f(flag ? make_string() : std::string("x"));
//     co_await [t = tracked{}]() -> task<void> {...}();   (and [t] captures)
//   PR 106188: co_await in an if/while/switch condition of a coroutine with no named local:
//     if ((co_await flush(0)).value() != 0) co_return; if ((co_await f(std::string("x"))).ec) ...
// the named-local form below is the workaround; drop these rules when the minimum compiler has the fixes
#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "connect/coro/task.hpp"
#include "support/unit_test.hpp"

namespace {

using cproxy::coro::task;

std::deque<std::coroutine_handle<>> ready;  // the run loop: yield_now parks here, check() resumes
struct yield_now {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { ready.push_back(h); }
  void await_resume() const noexcept {}
};

// Longer than the small-string buffer, so a use after destruction is a heap use-after-free.
constexpr std::size_t long_size = 64;
std::string long_text() {
  return std::string(long_size, 'x');
}

std::set<const void*> live;  // a destructor on an address not in here ran without its constructor
int ctors = 0, dtors = 0, bad = 0;
std::size_t sink = 0;

struct tracked {
  std::string text = long_text();
  tracked() { born(); }
  tracked(const tracked& o) : text(o.text) { born(); }
  tracked(tracked&& o) noexcept : text(std::move(o.text)) { born(); }
  ~tracked() {
    ++dtors;
    if (!live.erase(this)) ++bad;
  }
  void born() {
    ++ctors;
    live.insert(this);
  }
  bool ok() const { return live.count(this) != 0 && text == long_text(); }
};

struct result {
  std::error_code ec;
  std::size_t n = 0;
};
struct fat_result {
  std::error_code ec;
  std::string text;
};
struct failure {  // the shape of the proxy's downstream failures: an aggregate owning a string
  int kind = 0;
  bool retryable = false;
  std::string detail;
};
failure make_failure(int kind, std::string detail = long_text()) {
  return {kind, false, std::move(detail)};
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s));
}
std::size_t count_x(std::span<const std::byte> b) {  // reads every byte: a freed buffer trips ASan
  return static_cast<std::size_t>(std::ranges::count(b, std::byte{'x'}));
}

// Callees: every one suspends before it reads its argument.
task<result> f_string(std::string s) {
  co_await yield_now{};
  co_return result{{}, count_x(bytes_of(s))};
}
task<result> f_tracked(tracked t) {
  co_await yield_now{};
  co_return result{{}, t.ok() ? t.text.size() : 0};
}
task<result> f_span(std::span<const std::byte> b) {
  co_await yield_now{};
  co_return result{{}, count_x(b)};
}
task<result> f_sv(std::string_view v) {
  co_await yield_now{};
  co_return result{{}, count_x(std::as_bytes(std::span(v)))};
}
task<result> f_cref(const std::string& s) {
  co_await yield_now{};
  co_return result{{}, count_x(bytes_of(s))};
}
task<result> f_tref(const tracked& t) {
  co_await yield_now{};
  co_return result{{}, t.ok() ? t.text.size() : 0};
}
task<fat_result> f_fat(std::string s) {
  co_await yield_now{};
  co_return fat_result{{}, s + s};
}
task<result> f_failure(failure f) {
  co_await yield_now{};
  co_return result{{}, count_x(bytes_of(f.detail))};
}
task<std::error_code> flush_like(int fail) {
  co_await yield_now{};
  co_return fail ? std::make_error_code(std::errc::io_error) : std::error_code{};
}
struct sock {
  task<result> write_all(std::span<const std::byte> b, int timeout) {
    co_await yield_now{};
    co_return result{{}, count_x(b) + static_cast<std::size_t>(timeout)};
  }
};
struct nontrivial_awaiter {  // awaited as a prvalue returned by a function
  tracked t;
  std::string s = long_text();
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { ready.push_back(h); }
  std::size_t await_resume() const { return t.ok() ? count_x(bytes_of(s)) : 0; }
};
nontrivial_awaiter make_awaiter() {
  return {};
}

// Resumes until the shape completes (bounded), then checks its result (a tracked argument counts only
// while alive) and that every tracked object was constructed and destroyed exactly once.
void check(task<void> shape, std::size_t expected) {
  ready.clear(), live.clear(), ctors = dtors = bad = 0, sink = 0;
  auto h = shape.release();
  ready.push_back(h);
  for (int i = 0; i < 100 && !ready.empty(); ++i) {
    auto next = ready.front();
    ready.pop_front();
    next.resume();
  }
  BOOST_TEST(h.done());
  if (h.done()) BOOST_CHECK_NO_THROW(h.promise().take());
  h.destroy();
  BOOST_TEST(sink == expected);
  BOOST_TEST(bad == 0);
  BOOST_TEST(live.empty());
  BOOST_TEST(ctors == dtors);
}

struct shapes {  // static members so that each one-statement shape stays on one line
  static task<void> a_string_ctor() { sink += (co_await f_string(std::string(long_size, 'x'))).n; }
  static task<void> a_string_fn() { sink += (co_await f_string(long_text())).n; }
  static task<void> a_tracked_paren() { sink += (co_await f_tracked(tracked())).n; }
  static task<void> a_tracked_brace() { sink += (co_await f_tracked(tracked{})).n; }
  static task<void> b_bytes_of_tmp() { sink += (co_await f_span(bytes_of(long_text()))).n; }
  static task<void> b_span_of_tmp() {
    sink += (co_await f_span(std::span<const std::byte>(bytes_of(long_text())))).n;
  }
  static task<void> c_method_bytes_of_named() {
    sock s;
    sock* c = &s;
    const std::string response = long_text();
    sink += (co_await c->write_all(bytes_of(response), 5)).n;
  }
  static task<void> d_awaiter_prvalue() { sink += co_await make_awaiter(); }
  static task<void> d_cref_of_tmp() { sink += (co_await f_cref(long_text())).n; }
  static task<void> d_sv_of_tmp() { sink += (co_await f_sv(long_text())).n; }
  static task<void> d_tref_of_tmp() { sink += (co_await f_tref(tracked{})).n; }
  static task<void> e_member_access() {
    const std::string x = long_text();
    if ((co_await f_string(x)).ec) ++bad;
    sink += (co_await f_fat(x)).text.size();
  }
  static task<void> e_stmt_fat_member() { sink += (co_await f_fat(std::string(long_size, 'x'))).text.size(); }
  static task<void> e_if_cond_fat_named() {
    std::string a = long_text();
    if ((co_await f_fat(a)).ec) ++bad;
    sink += 1;
  }
  static task<void> e_if_cond_trivial_named() {
    std::string a = long_text();
    if ((co_await f_string(a)).ec) ++bad;
    sink += 1;
  }
  static task<void> r_fn_default_string_arg() { sink += (co_await f_failure(make_failure(3))).n; }
  static task<void> r_fn_string_arg() { sink += (co_await f_failure(make_failure(3, long_text()))).n; }
  static task<void> r_fn_move_arg() {
    std::string d = long_text();
    sink += (co_await f_failure(make_failure(3, std::move(d)))).n;
  }
  // No other local: the PR 106188 frame, which the declaration in the condition avoids.
  static task<void> r_if_decl_cond() {
    if (const std::error_code ec = co_await flush_like(0)) co_return;
    sink += 1;
  }
  static task<void> r_move_named_aggr() {
    failure x{1, false, long_text()};
    sink += (co_await f_failure(std::move(x))).n;
  }
  static task<void> r_move_named_string() {
    std::string a = long_text();
    sink += (co_await f_string(std::move(a))).n;
  }
  // The workarounds: co_await f_failure(failure{1, false, long_text()}), co_await nontrivial_awaiter{}
  // and if ((co_await flush_like(1)).value() != 0) in a coroutine without locals, each with a named local.
  static task<void> w_named_aggr() {
    const failure x{1, false, long_text()};
    sink += (co_await f_failure(x)).n + x.detail.size();
  }
  static task<void> w_named_awaiter() {
    nontrivial_awaiter a;
    sink += co_await a;
  }
  static task<void> w_named_result_cond() {
    const std::error_code ec = co_await flush_like(1);
    if (ec.value() != 0) sink += 1;
  }
};

struct row {
  const char* name;
  task<void> (*shape)();
  std::size_t expected;
};
const row rows[] = {
    {"a_string_ctor", shapes::a_string_ctor, long_size},
    {"a_string_fn", shapes::a_string_fn, long_size},
    {"a_tracked_paren", shapes::a_tracked_paren, long_size},
    {"a_tracked_brace", shapes::a_tracked_brace, long_size},
    {"b_bytes_of_tmp", shapes::b_bytes_of_tmp, long_size},
    {"b_span_of_tmp", shapes::b_span_of_tmp, long_size},
    {"c_method_bytes_of_named", shapes::c_method_bytes_of_named, long_size + 5},
    {"d_awaiter_prvalue", shapes::d_awaiter_prvalue, long_size},
    {"d_cref_of_tmp", shapes::d_cref_of_tmp, long_size},
    {"d_sv_of_tmp", shapes::d_sv_of_tmp, long_size},
    {"d_tref_of_tmp", shapes::d_tref_of_tmp, long_size},
    {"e_member_access", shapes::e_member_access, 2 * long_size},
    {"e_stmt_fat_member", shapes::e_stmt_fat_member, 2 * long_size},
    {"e_if_cond_fat_named", shapes::e_if_cond_fat_named, 1},
    {"e_if_cond_trivial_named", shapes::e_if_cond_trivial_named, 1},
    {"r_fn_default_string_arg", shapes::r_fn_default_string_arg, long_size},
    {"r_fn_string_arg", shapes::r_fn_string_arg, long_size},
    {"r_fn_move_arg", shapes::r_fn_move_arg, long_size},
    {"r_if_decl_cond", shapes::r_if_decl_cond, 1},
    {"r_move_named_aggr", shapes::r_move_named_aggr, long_size},
    {"r_move_named_string", shapes::r_move_named_string, long_size},
    {"w_named_aggr", shapes::w_named_aggr, 2 * long_size},
    {"w_named_awaiter", shapes::w_named_awaiter, long_size},
    {"w_named_result_cond", shapes::w_named_result_cond, 1},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(gcc12_coroutine_shapes)

BOOST_AUTO_TEST_CASE(every_safe_shape_keeps_its_temporaries_alive) {
  for (const row& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      check(r.shape(), r.expected);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
