// Implementation of devtools_browser.hpp: fork/exec of Chromium into its own process group, and the
// protocol over a Boost.Beast WebSocket whose every operation runs on a private io_context for at most
// the time left before its deadline.
#include "support/devtools_browser.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

namespace cproxy::test {
namespace {

namespace json = boost::json;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using clock = std::chrono::steady_clock;

bool executable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0;
}

// The environment Chromium runs in: ours, with HOME moved and the XDG folders (which would point it
// back into the real home) left out.
std::vector<std::string> browser_environment(const std::string& home) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view v(*e);
    if (v.starts_with("HOME=") || v.starts_with("XDG_")) continue;
    env.emplace_back(v);
  }
  env.push_back("HOME=" + home);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Waits up to `deadline` for `pid` to exit; true once it has been reaped.
bool reaped_within(pid_t pid, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  for (int i = 0; i < 100000; ++i) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  unsigned bits = 0;
  int count = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding and line breaks
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

}  // namespace

// The browser's WebSocket. An operation that has not finished by its deadline is cancelled and the
// connection counts as dead (a Beast stream cannot go on after a cancelled read).
struct devtools_browser::connection {
  boost::asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  bool dead = false;

  // Runs the io_context until `done` is set or `until` passes; throws if the operation failed.
  void finish(std::optional<boost::system::error_code>& done, clock::time_point until, const char* what) {
    ioc.restart();
    ioc.run_until(until);
    if (!done) {
      dead = true;
      boost::system::error_code ignored;
      ws.next_layer().cancel(ignored);
      ioc.restart();
      ioc.run_for(2s);  // the cancelled handler runs, so nothing refers to this frame afterwards
      throw std::runtime_error(std::string("devtools: ") + what + " timed out");
    }
    if (*done) {
      dead = true;
      throw std::runtime_error(std::string("devtools: ") + what + ": " + done->message());
    }
  }

  void open(unsigned port, const std::string& path, clock::time_point until) {
    std::optional<boost::system::error_code> done;
    const tcp::endpoint loopback(boost::asio::ip::make_address_v4("127.0.0.1"),
                                 static_cast<unsigned short>(port));
    ws.next_layer().async_connect(loopback, [&](boost::system::error_code ec) { done = ec; });
    finish(done, until, "connect");
    done.reset();
    ws.read_message_max(256u << 20);  // full-page screenshots come as one base64 message
    ws.async_handshake("127.0.0.1:" + std::to_string(port), path,
                       [&](boost::system::error_code ec) { done = ec; });
    finish(done, until, "WebSocket handshake");
  }

  void write(const std::string& text, clock::time_point until) {
    if (dead) throw std::runtime_error("devtools: the connection to the browser is gone");
    std::optional<boost::system::error_code> done;
    ws.text(true);
    ws.async_write(boost::asio::buffer(text), [&](boost::system::error_code ec, std::size_t) { done = ec; });
    finish(done, until, "write");
  }

  std::string read(clock::time_point until) {
    if (dead) throw std::runtime_error("devtools: the connection to the browser is gone");
    std::optional<boost::system::error_code> done;
    boost::beast::flat_buffer buffer;
    ws.async_read(buffer, [&](boost::system::error_code ec, std::size_t) { done = ec; });
    finish(done, until, "read");
    return boost::beast::buffers_to_string(buffer.data());
  }
};

std::string devtools_browser::chromium_path() {
  if (const char* chosen = std::getenv("CONNECT_TEST_CHROMIUM"); chosen && *chosen) return chosen;
  if (executable("/usr/lib/chromium/chromium")) return "/usr/lib/chromium/chromium";
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (executable(p)) return p;
  return {};
}

devtools_browser::devtools_browser(devtools_options options) : options_(std::move(options)) {
  const auto until = clock::now() + options_.start_deadline;
  std::filesystem::create_directories(options_.user_data_dir);
  const std::string port_file = options_.user_data_dir + "/DevToolsActivePort";
  std::filesystem::remove(port_file);  // a profile used before keeps the last run's
  const std::string home = options_.home.empty() ? options_.user_data_dir : options_.home;
  std::vector<std::string> argv{
      chromium_path(),
      "--headless=new",
      "--no-sandbox",  // tests run as root, where the sandbox cannot start
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--no-first-run",
      "--no-default-browser-check",
      "--no-proxy-server",
      "--remote-debugging-port=0",
      "--user-data-dir=" + options_.user_data_dir,
      "--window-size=" + std::to_string(options_.width) + "," + std::to_string(options_.height)};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  argv.emplace_back("about:blank");
  if (!executable(argv[0])) throw std::runtime_error("devtools: no Chromium to run");
  std::vector<std::string> env = browser_environment(home);
  std::vector<char*> c_argv = c_strings(argv);
  std::vector<char*> c_env = c_strings(env);
  const std::string log = options_.user_data_dir + "/chromium.log";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) throw std::runtime_error("devtools: cannot create " + log);
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(log_fd);
    throw std::runtime_error("devtools: fork failed");
  }
  if (pid_ == 0) {
    // Its own process group: its helpers (zygote, renderers) can be stopped with it by this pid.
    ::setpgid(0, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from here, so it holds before any kill below
  ::close(log_fd);

  try {
    // DevToolsActivePort: the port on the first line, the browser's WebSocket path on the second.
    unsigned port = 0;
    std::string path;
    for (int i = 0; i < 100000 && path.empty(); ++i) {
      std::ifstream in(port_file);
      std::string first;
      if (in && std::getline(in, first) && std::getline(in, path) && !path.empty()) {
        port = static_cast<unsigned>(std::stoul(first));
        break;
      }
      path.clear();
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("devtools: Chromium exited at start");
      }
      if (clock::now() >= until) throw std::runtime_error("devtools: no DevToolsActivePort in time");
      std::this_thread::sleep_for(20ms);
    }
    conn_ = std::make_unique<connection>();
    conn_->open(port, path, until);
    const auto left = [&] {
      return std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()));
    };
    json::object target;
    // No width/height: Chromium takes them for new windows only ("Target position can only be set for
    // new windows"); a tab has the window's size, --window-size.
    target["url"] = "about:blank";
    json::object made;
    made["method"] = "Target.createTarget";
    made["params"] = std::move(target);
    const json::object created = send(std::move(made), left());
    json::object attach;
    attach["targetId"] = created.at("targetId");
    attach["flatten"] = true;
    json::object attaching;
    attaching["method"] = "Target.attachToTarget";
    attaching["params"] = std::move(attach);
    session_ = std::string(send(std::move(attaching), left()).at("sessionId").as_string());
  } catch (const std::exception& e) {
    const std::string tail = log_tail();
    stop();
    throw std::runtime_error(std::string(e.what()) + "\nChromium's log:\n" + tail);
  }
}

devtools_browser::~devtools_browser() {
  stop();
}

void devtools_browser::stop() noexcept {
  if (pid_ <= 0) return;
  if (conn_ && !conn_->dead) {
    try {
      json::object close;
      close["method"] = "Browser.close";
      send(std::move(close), 3s);
    } catch (const std::exception&) {
      // It may close the connection before it answers; the waits below decide.
    }
  }
  conn_.reset();
  if (!reaped_within(pid_, 5s)) {
    ::kill(pid_, SIGTERM);
    if (!reaped_within(pid_, 5s)) {
      ::kill(-pid_, SIGKILL);  // the group this pid leads: Chromium and its helpers
      reaped_within(pid_, 5s);
    }
  }
  pid_ = -1;
}

json::object devtools_browser::send(json::object message, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  const std::int64_t id = ++next_id_;
  message["id"] = id;
  const std::string method(message.at("method").as_string());
  conn_->write(json::serialize(message), until);
  // Events (the page's console, target changes) arrive in between; only the answer with our id counts.
  for (int i = 0; i < 100000; ++i) {
    const std::string text = conn_->read(until);
    boost::system::error_code ec;
    const json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    const json::value* got = o.if_contains("id");
    if (got == nullptr || !got->is_int64() || got->as_int64() != id) continue;
    if (const json::value* error = o.if_contains("error"))
      throw devtools_error("devtools: " + method + ": " + json::serialize(*error));
    const json::value* result = o.if_contains("result");
    return result != nullptr && result->is_object() ? result->as_object() : json::object();
  }
  throw std::runtime_error("devtools: no answer to " + method);
}

json::object devtools_browser::call(std::string_view method, json::object params,
                                    std::chrono::milliseconds deadline) {
  json::object message;
  message["method"] = method;
  message["params"] = std::move(params);
  message["sessionId"] = session_;
  return send(std::move(message), deadline);
}

void devtools_browser::navigate(const std::string& url, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  const auto left = [&] {
    return std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()));
  };
  // A mark on the document being left: the load is done when a complete document lacks it.
  evaluate("globalThis.__devtools_left = true", left());
  json::object params;
  params["url"] = url;
  const json::object r = call("Page.navigate", std::move(params), left());
  if (const json::value* error = r.if_contains("errorText"); error && !error->as_string().empty())
    throw devtools_error("devtools: loading " + url + ": " + std::string(error->as_string()));
  const bool new_document = r.contains("loaderId");
  const std::string loaded = new_document
                                 ? "!globalThis.__devtools_left && document.readyState === 'complete'"
                                 : "document.readyState === 'complete'";
  if (!wait_until(loaded, left())) throw std::runtime_error("devtools: " + url + " did not finish loading");
}

json::value devtools_browser::evaluate(const std::string& expression, std::chrono::milliseconds deadline) {
  json::object params;
  params["expression"] = expression;
  params["awaitPromise"] = true;
  params["returnByValue"] = true;
  const json::object r = call("Runtime.evaluate", std::move(params), deadline);
  if (const json::value* thrown = r.if_contains("exceptionDetails")) {
    const json::object& d = thrown->as_object();
    std::string text = d.contains("text") ? std::string(d.at("text").as_string()) : "exception";
    if (const json::value* e = d.if_contains("exception"))
      if (const json::value* description = e->as_object().if_contains("description"))
        text += " " + std::string(description->as_string());
    throw devtools_error("devtools: " + expression.substr(0, 200) + ": " + text);
  }
  const json::object& value = r.at("result").as_object();
  const json::value* v = value.if_contains("value");
  return v ? *v : json::value();
}

bool devtools_browser::wait_until(const std::string& predicate, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  for (int i = 0; i < 100000; ++i) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
    if (left <= 0ms) return false;
    try {
      const json::value v = evaluate("!!(" + predicate + ")", left);
      if (v.is_bool() && v.as_bool()) return true;
    } catch (const devtools_error&) {
      // Not yet: e.g. the page's context went away while a document is replaced.
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void devtools_browser::screenshot(const std::string& path, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  const auto left = [&] {
    return std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()));
  };
  const json::object metrics = call("Page.getLayoutMetrics", {}, left());
  const json::object& size = metrics.at("cssContentSize").as_object();
  json::object clip;
  clip["x"] = 0;
  clip["y"] = 0;
  clip["width"] = std::max(1.0, size.at("width").to_number<double>());
  clip["height"] = std::min(8000.0, std::max(1.0, size.at("height").to_number<double>()));
  clip["scale"] = 1;
  json::object params;
  params["format"] = "png";
  params["captureBeyondViewport"] = true;
  params["clip"] = std::move(clip);
  const json::object shot = call("Page.captureScreenshot", std::move(params), left());
  const std::string png = base64_decode(shot.at("data").as_string());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << png;
  if (!out.flush()) throw std::runtime_error("devtools: cannot write " + path);
}

std::string devtools_browser::log_tail(std::size_t max_bytes) const {
  std::ifstream in(options_.user_data_dir + "/chromium.log", std::ios::binary);
  std::stringstream all;
  all << in.rdbuf();
  std::string kept;
  std::string line;
  // Without its D-Bus complaints (no bus runs here), which would fill the tail.
  while (std::getline(all, line))
    if (line.find("dbus/") == std::string::npos) kept += line + '\n';
  return kept.size() > max_bytes ? kept.substr(kept.size() - max_bytes) : kept;
}

std::string js_string(std::string_view text) {
  return json::serialize(json::string(text));
}

}  // namespace cproxy::test
