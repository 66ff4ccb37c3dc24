// Implementation of hold.hpp: the waiting lines of restart-holding, their prober, the watch on each held
// request's client, and the outage's log lines.
#include "hold.hpp"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <sstream>

#include "connect/core/log.hpp"
#include "connect/coro/scope.hpp"
#include "connect/io/timer.hpp"
#include "error_pages.hpp"
#include "head_reader.hpp"
#include "responses.hpp"

namespace cproxy::proxy {

struct hold_waiter {
  explicit hold_waiter(io::context& ctx) : timer(ctx) {}
  io::timer timer;
  // Set by whoever wakes this waiter (and takes it out of the waiting list) before cancelling its timer;
  // authoritative over the wait's own result (the timer may have elapsed just before the cancel).
  // recheck: the prober found its route gone or moved; the others look up theirs again.
  enum class wake { none, upstream_up, your_turn, recheck } woken = wake::none;
  bool queued = false;  // in the line's waiting list, at `place`
  std::list<hold_waiter*>::iterator place;
  // Set by the client watch: the client hung up, so nothing is to be sent on its behalf any more.
  bool client_gone = false;
  // Set when the hold ends, before the watch's read is cancelled: a read that completed just before the
  // cancel must not be followed by a new one, which the cancel would miss.
  bool hold_over = false;
};

void upstream_holds::tidy(const std::string& key) {
  const auto it = lines_.find(key);
  if (it != lines_.end() && !it->second.prober && it->second.waiting.empty()) lines_.erase(it);
}

namespace {

using clock = std::chrono::steady_clock;

// product.md's backoff, 50 ms growing by half up to 500 ms. A refused connect to this machine costs
// microseconds, and most dev servers are back within a couple of seconds, so a loopback upstream is
// probed every 50 ms for the first 2 s of its hold: the first held request is then answered within
// about 50 ms of the upstream's listen(). Past that, and for another host, the pause grows.
constexpr io::duration first_backoff{50};
constexpr io::duration last_backoff{500};
constexpr io::duration loopback_quick_probing{2000};

bool loopback(const route::route& r) {
  return r.host == "localhost" || r.host == "::1" || r.host.starts_with("127.");
}

io::duration next_backoff(const route::route& r, io::duration now, io::duration held_for) {
  if (loopback(r) && held_for < loopback_quick_probing) return first_backoff;
  return std::min(last_backoff, now * 3 / 2);
}

bool holdable(const http::request_head& head) {
  return !(head.body == http::framing::length && head.content_length > max_held_body);
}

// Where the request's Host leads in the worker's newest route table: the route may have gone while the
// request waited (its process died, its entry was removed) or moved to another port.
struct route_now {
  std::shared_ptr<const route::table> routes;
  const route::route* route = nullptr;  // null: the name is not routed any more
  std::string name;                     // the name the Host gives, for the 404
};

route_now resolve_again(client_side* c, const exchange* ex) {
  const http::request_head& head = *ex->request;
  route_now now{c->w->routes.hold(), nullptr, {}};
  const bool proxy_form = head.is_connect() || head.absolute_form;
  const route::resolution where =
      route::resolve(*now.routes, proxy_form ? head.authority : head.host, proxy_form);
  if (where.what == route::resolution::kind::service) now.route = where.target;
  now.name = where.name;
  return now;
}

// The answer a new request would get now that the route is gone: its 404 (HTML for a browser).
dial_result route_gone(client_side* c, exchange* ex, route_now now) {
  const page_context page{c->env->options, c->env->port, now.routes.get(), c->env->inspector};
  failure f = upstream_failure(failure_kind::route_gone);
  f.answer =
      not_found_response(page, now.name, false, !ex->request->is_connect() && wants_html(*ex->request));
  f.logged = true;
  ex->routes = std::move(now.routes);
  ex->route = nullptr;
  return dial_result{nullptr, false, std::move(f)};
}

std::string seconds_text(clock::duration d) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << std::chrono::duration<double>(d).count() << " s";
  return os.str();
}

// Wakes every waiting request of `line`, in arrival order.
void release_all(hold_line& line, hold_waiter::wake why) {
  while (!line.waiting.empty()) {
    hold_waiter* w = line.waiting.front();
    line.waiting.pop_front();
    w->queued = false;
    w->woken = why;
    w->timer.cancel();
  }
}

// The prober leaves without the upstream having answered: the first waiting request probes next.
void hand_over(hold_line& line) {
  line.prober = nullptr;
  if (line.waiting.empty()) return;
  hold_waiter* next = line.waiting.front();
  line.waiting.pop_front();
  next->queued = false;
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
    me->queued = true;
  }
}

// Out of the line for good: a prober hands the probing on, a waiting request leaves its place.
void leave(hold_line& line, hold_waiter* me) {
  if (line.prober == me) {
    hand_over(line);
  } else if (me->queued) {
    line.waiting.erase(me->place);
    me->queued = false;
  }
}

// While a request is held, its client is watched: a hang-up (EOF, a reset) ends the hold at once, so
// that the request is never sent once the upstream is back and its memory goes with it. Bytes that
// arrive instead (the rest of a body, a pipelined request) are kept for the stages after the hold, up
// to one more read's worth; past that the client is left unread until then (the rest of a body waits
// in the kernel or the stream's window, so a held request's memory does not grow with its body).
coro::task<void> watch_held_client(client_side* c, hold_waiter* me, clock::time_point deadline) {
  const std::size_t limit = c->in.size() + io::stream::read_any_size;
  // Bounded: each pass but the last adds at least one byte, and the buffer stops at `limit`.
  for (std::size_t reads = 0; reads <= limit && c->in.size() < limit && !me->hold_over; ++reads) {
    const io::io_result r = co_await read_idle(c->stream, &c->in, left_until(deadline));
    if (me->hold_over || io::is_cancelled(r.ec) || io::is_timeout(r.ec)) co_return;  // the hold ended first
    if (!r.ec && r.bytes > 0) continue;
    me->client_gone = true;
    me->timer.cancel();
    co_return;
  }
}

// Why a request leaves its line; the last one out of an outage tells the log how it ended.
enum class leaving { answered, expired, failed, route_gone, moved, client_gone };

}  // namespace

coro::task<dial_result> hold_upstream(client_side* c, exchange* ex, dial_result refused) {
  upstream_holds* holds = c->w->upstreams->holds();
  const timeouts& t = c->env->options->timeouts;
  if (!holds || t.hold <= io::duration::zero() || !holdable(*ex->request)) co_return refused;
  // The refusal may be the route's end itself (its process died): then a new request's 404, not a hold.
  route_now now = resolve_again(c, ex);
  if (!now.route) co_return route_gone(c, ex, std::move(now));
  std::string key = upstream_key(*ex->route);
  const clock::time_point start = clock::now();
  if (!holds->health().plausibly_restarting(key, start, t.hold_answered, t.hold_appeared)) co_return refused;

  const auto begin_outage = [&] {
    if (holds->health().begin_outage(key, clock::now()))
      log::info(ex->route->name, ": ", ex->route->upstream_text(),
                " refused the connection; holding its requests for up to ",
                std::chrono::duration_cast<std::chrono::seconds>(t.hold).count(), " s");
  };
  // The last request out of a line that did not see the upstream answer ends the outage's log.
  const auto end_outage = [&](leaving why, const std::string& name, const std::string& upstream) {
    const auto since = holds->health().end_outage(key);
    if (!since) return;
    const std::string waited = seconds_text(clock::now() - *since);
    switch (why) {
      case leaving::answered:
        log::info(name, ": ", upstream, " answers again after ", waited);
        break;
      case leaving::route_gone:
        log::info(name, ": ", upstream, " was unrouted after ", waited, " (its process ended or its entry",
                  " was removed); its held requests got 404");
        break;
      case leaving::moved:
        log::info(name, ": ", upstream, " did not answer within ", waited, "; the route moved to ",
                  ex->route->upstream_text(), ", where its held requests wait now");
        break;
      case leaving::client_gone:
        log::info(name, ": ", upstream, " did not answer within ", waited,
                  "; the clients of its held requests went away");
        break;
      case leaving::failed:  // its own answer's line tells (a 504); the outage goes on
        break;
      case leaving::expired:
        log::info(name, ": ", upstream, " did not answer within ", waited, "; its held requests got 502");
        break;
    }
  };

  begin_outage();
  const clock::time_point deadline = start + t.hold;
  hold_waiter me(holds->ctx());
  coro::scope watch;
  watch.spawn(watch_held_client(c, &me, deadline));
  join(holds->line(key), &me);
  io::duration backoff = first_backoff;
  dial_result d = std::move(refused);
  leaving why = leaving::expired;
  std::optional<route_now> gone;
  // Bounded by the deadline: each pass waits, or dials after a wake that took it out of the line.
  for (;;) {
    const bool probing = holds->line(key).prober == &me;
    const io::duration left = left_until(deadline);
    me.woken = hold_waiter::wake::none;
    bool dial = false;
    if (!me.client_gone && clock::now() < deadline) {
      const io::duration pause = probing ? std::min(backoff, left) : left;
      const std::error_code waited = co_await me.timer.wait(pause);
      if (me.client_gone) {
        // The watch saw the hang-up; leave below.
      } else if (me.woken != hold_waiter::wake::none) {
        dial = true;  // woken: out of the waiting list already (a new prober, a recheck, the upstream is up)
      } else if (io::is_cancelled(waited)) {
        // Nobody woke us: the worker is stopping. Leave now with the 502.
      } else {
        dial = probing && clock::now() < deadline;
      }
    }
    if (me.client_gone) {
      why = leaving::client_gone;
      break;
    }
    // A stopping worker ends its holds: a request handed the probing then leaves too, and so on down the
    // line, so that no new timer outlives the stop's cancel_all().
    if (dial && me.woken == hold_waiter::wake::your_turn && c->w->draining) dial = false;
    if (!dial) break;

    // Each retry looks the name up again: gone means the 404 at once, moved means holding on there.
    now = resolve_again(c, ex);
    if (!now.route || upstream_key(*now.route) != key) {
      hold_line& line = holds->line(key);
      if (line.prober == &me) {
        line.prober = nullptr;
        release_all(line, hold_waiter::wake::recheck);  // the others may share the address, not the name
      }
      if (!now.route) {
        why = leaving::route_gone;
        gone = std::move(now);
        break;
      }
      const bool last = !line.prober && line.waiting.empty();
      const std::string old_name = ex->route->name, old_upstream = ex->route->upstream_text();
      holds->tidy(key);
      ex->routes = std::move(now.routes);
      ex->route = now.route;
      if (last) end_outage(leaving::moved, old_name, old_upstream);
      key = upstream_key(*ex->route);
      begin_outage();
      backoff = first_backoff;
      if (me.woken == hold_waiter::wake::recheck) {
        join(holds->line(key), &me);
        continue;
      }
    } else if (me.woken == hold_waiter::wake::recheck) {
      join(holds->line(key), &me);  // still routed here: back in the line (the end, or probing)
      continue;
    }

    d = co_await c->w->upstreams->connect(ex->route, t.connect, false);
    hold_line& line = holds->line(key);
    if (!d.failed) {
      if (line.prober == &me) {
        line.prober = nullptr;
        release_all(line, hold_waiter::wake::upstream_up);
      }
      why = leaving::answered;
      break;
    }
    if (d.failed->kind != failure_kind::refused) {
      why = leaving::failed;
      break;
    }
    // Refused again: a prober backs off; a released request (the upstream went away again) queues anew.
    if (line.prober == &me) {
      backoff =
          next_backoff(*ex->route, backoff, std::chrono::duration_cast<io::duration>(clock::now() - start));
    } else {
      join(line, &me);
    }
    if (me.client_gone) {
      why = leaving::client_gone;
      break;
    }
  }

  hold_line& line = holds->line(key);
  leave(line, &me);
  const bool last = !line.prober && line.waiting.empty();
  holds->tidy(key);
  me.hold_over = true;
  c->stream->cancel();  // ends the watch's read if it is still waiting
  co_await watch.join();
  const std::string name = ex->route->name, upstream = ex->route->upstream_text();
  if (why == leaving::answered || (last && why != leaving::failed)) end_outage(why, name, upstream);
  if (me.client_gone && why == leaving::answered) {
    // The client left while the connection was being made: it goes to the pool unused.
    c->w->upstreams->give_back(ex->route, std::move(d.stream));
    why = leaving::client_gone;
  }
  if (why == leaving::route_gone) co_return route_gone(c, ex, std::move(*gone));
  if (why == leaving::client_gone) {
    failure f = downstream_failure(failure_kind::client_gone, "closed while its request was held");
    co_return dial_result{nullptr, false, std::move(f)};
  }
  if (d.failed && d.failed->kind == failure_kind::refused) d.failed->logged = true;
  co_return d;
}

}  // namespace cproxy::proxy
