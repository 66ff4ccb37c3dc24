// Implementation of hold.hpp: the waiting lines of restart-holding, their prober and their log lines.
#include "hold.hpp"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <sstream>

#include "connect/core/log.hpp"
#include "connect/io/timer.hpp"

namespace cproxy::proxy {

struct hold_waiter {
  explicit hold_waiter(io::context& ctx) : timer(ctx) {}
  io::timer timer;
  // Set by whoever wakes this waiter (and takes it out of the waiting list) before cancelling its timer;
  // authoritative over the wait's own result (the timer may have elapsed just before the cancel).
  enum class wake { none, upstream_up, your_turn } woken = wake::none;
  std::list<hold_waiter*>::iterator place;
};

void upstream_holds::tidy(const std::string& key) {
  const auto it = lines_.find(key);
  if (it != lines_.end() && !it->second.prober && it->second.waiting.empty()) lines_.erase(it);
}

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr io::duration first_backoff{50};
constexpr io::duration last_backoff{500};

bool holdable(const http::request_head& head) {
  return !(head.body == http::framing::length && head.content_length > max_held_body);
}

// The route may have gone while the request waited (its process died, its entry was removed): then
// nothing will come back on it.
bool still_routed(client_side* c, const route::route& r) {
  const route::route* now = c->w->routes.get().find(r.name);
  return now && now->host == r.host && now->port == r.port;
}

std::string seconds_text(clock::duration d) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << std::chrono::duration<double>(d).count() << " s";
  return os.str();
}

// Wakes every waiting request of `line` (the upstream answered), in arrival order.
void release_all(hold_line& line) {
  while (!line.waiting.empty()) {
    hold_waiter* w = line.waiting.front();
    line.waiting.pop_front();
    w->woken = hold_waiter::wake::upstream_up;
    w->timer.cancel();
  }
}

// The prober leaves without the upstream having answered: the first waiting request probes next.
void hand_over(hold_line& line) {
  line.prober = nullptr;
  if (line.waiting.empty()) return;
  hold_waiter* next = line.waiting.front();
  line.waiting.pop_front();
  line.prober = next;
  next->woken = hold_waiter::wake::your_turn;
  next->timer.cancel();
}

void join(hold_line& line, hold_waiter* me) {
  if (!line.prober) {
    line.prober = me;
  } else {
    line.waiting.push_back(me);
    me->place = std::prev(line.waiting.end());
  }
}

}  // namespace

coro::task<dial_result> hold_upstream(client_side* c, exchange* ex, dial_result refused) {
  upstream_holds* holds = c->w->upstreams->holds();
  const timeouts& t = c->env->options->timeouts;
  const route::route& r = *ex->route;
  if (!holds || t.hold <= io::duration::zero() || !holdable(*ex->request)) co_return refused;
  const std::string key = upstream_key(r);
  const clock::time_point start = clock::now();
  if (!holds->health().plausibly_restarting(key, start, t.hold_answered, t.hold_appeared)) co_return refused;
  if (!still_routed(c, r)) co_return refused;

  if (holds->health().begin_outage(key, start))
    log::info(r.name, ": ", r.upstream_text(), " refused the connection; holding its requests for up to ",
              std::chrono::duration_cast<std::chrono::seconds>(t.hold).count(), " s");
  const clock::time_point deadline = start + t.hold;
  hold_waiter me(holds->ctx());
  join(holds->line(key), &me);
  io::duration backoff = first_backoff;
  dial_result d = std::move(refused);
  for (;;) {
    const bool probing = holds->line(key).prober == &me;
    const clock::time_point now = clock::now();
    const io::duration left =
        std::chrono::duration_cast<io::duration>(std::max(deadline - now, clock::duration{}));
    me.woken = hold_waiter::wake::none;
    bool dial = false;
    if (left > io::duration::zero()) {
      const io::duration pause = probing ? std::min(backoff, left) : left;
      const std::error_code waited = co_await me.timer.wait(pause);
      if (me.woken != hold_waiter::wake::none) {
        dial = true;  // woken: out of the waiting list already (a new prober, or the upstream is up)
      } else if (io::is_cancelled(waited)) {
        // Nobody woke us: the worker is stopping. Leave now with the 502.
      } else {
        dial = probing && clock::now() < deadline;
      }
    }
    // A stopping worker ends its holds: a request handed the probing then leaves too, and so on down the
    // line, so that no new timer outlives the stop's cancel_all().
    if (dial && me.woken == hold_waiter::wake::your_turn && c->w->draining) dial = false;
    if (dial && me.woken != hold_waiter::wake::upstream_up && !still_routed(c, r)) dial = false;
    if (!dial) break;

    d = co_await c->w->upstreams->connect(ex->route, t.connect, reuse::none);
    hold_line& line = holds->line(key);
    if (!d.failed) {
      if (line.prober == &me) {
        line.prober = nullptr;
        release_all(line);
      }
      holds->tidy(key);
      if (const auto since = holds->health().end_outage(key))
        log::info(r.name, ": ", r.upstream_text(), " answers again after ",
                  seconds_text(clock::now() - *since));
      co_return d;
    }
    if (d.failed->kind != failure_kind::refused) {
      if (line.prober == &me) hand_over(line);
      holds->tidy(key);
      co_return d;
    }
    // Refused again: a prober backs off; a released request (the upstream went away again) queues anew.
    if (line.prober == &me) {
      backoff = std::min(last_backoff, backoff * 3 / 2);
    } else {
      join(line, &me);
    }
  }

  hold_line& line = holds->line(key);
  if (line.prober == &me) {
    hand_over(line);
  } else if (me.woken == hold_waiter::wake::none) {
    line.waiting.erase(me.place);
  }
  const bool last = !line.prober && line.waiting.empty();
  holds->tidy(key);
  if (last) {
    if (const auto since = holds->health().end_outage(key))
      log::info(r.name, ": ", r.upstream_text(), " did not answer within ",
                seconds_text(clock::now() - *since), "; its held requests got 502");
  }
  if (d.failed) d.failed->logged = true;
  co_return d;
}

}  // namespace cproxy::proxy
