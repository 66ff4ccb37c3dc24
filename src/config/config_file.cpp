// Implementation of connect/config/config_file.hpp: config.json checks, the home folder, and the rules
// the route files share.
#include "connect/config/config_file.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "connect/config/json_text.hpp"

namespace cproxy::control {
namespace json = boost::json;
namespace {

using json_text::lower;
using json_text::parse_json;
using json_text::shown;
using json_text::whole_number;

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

bool is_ip_address(const std::string& s) {
  in_addr v4{};
  in6_addr v6{};
  return ::inet_pton(AF_INET, s.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, s.c_str(), &v6) == 1;
}

// Checks one parsed file into a config. Every check returns false once `error` is set; reading stops at
// the first error, so the text names one problem the user can fix.
class config_reader {
 public:
  config_reader(std::string prefix, bool strict, std::vector<std::string>& warnings)
      : prefix_(std::move(prefix)), strict_(strict), warnings_(warnings) {}

  const std::string& error() const { return error_; }

  bool read(const json::value& doc, config& c) {
    const json::object* top = doc.if_object();
    if (!top) return fail("the top level must be a JSON object, not " + shown(doc));
    for (const auto& [key, v] : *top) {
      if (v.is_null()) {
        // null is "not set", the way JavaScript tools write an unset field.
        if (!known_top(key) && !unknown(key)) return false;
        continue;
      }
      bool ok = true;
      if (key == "apiKey")
        ok = read_string(key, v, c.api_key);
      else if (key == "hubUrl")
        ok = read_hub_url(key, v, c.hub_url);
      else if (key == "port")
        ok = read_port(key, v, c.port);
      else if (key == "https")
        ok = read_bool(key, v, c.https);
      else if (key == "bind")
        ok = read_bind(key, v, c.bind);
      else if (key == "domains")
        ok = read_domains(key, v, c.domains);
      else if (key == "quiet")
        ok = read_bool(key, v, c.quiet);
      else if (key == "timeouts")
        ok = read_timeouts(v, c.timeouts);
      else if (key == "routes")
        ok = read_routes(v, c.routes);
      else if (key == "inspect")
        ok = read_inspect(v, c.inspect);
      else
        ok = unknown(key);
      if (!ok) return false;
    }
    return true;
  }

 private:
  static bool known_top(std::string_view key) {
    for (std::string_view k :
         {"apiKey", "hubUrl", "port", "https", "bind", "domains", "quiet", "timeouts", "routes", "inspect"})
      if (key == k) return true;
    return false;
  }

  bool fail(std::string text) {
    error_ = prefix_ + std::move(text);
    return false;
  }
  bool wrong(std::string_view key, std::string_view expected, const json::value& got) {
    return fail(quoted(key) + " must be " + std::string(expected) + ", not " + shown(got));
  }
  bool unknown(std::string_view key) {
    std::string text = prefix_ + "unknown key " + quoted(key);
    if (strict_) {
      error_ = std::move(text);
      return false;
    }
    warnings_.push_back(std::move(text));
    return true;
  }

  bool read_string(std::string_view key, const json::value& v, std::optional<std::string>& into) {
    if (!v.is_string()) return wrong(key, "a string", v);
    into = std::string(v.get_string());
    return true;
  }
  bool read_bool(std::string_view key, const json::value& v, std::optional<bool>& into) {
    if (!v.is_bool()) return wrong(key, "true or false", v);
    into = v.get_bool();
    return true;
  }
  bool read_port(std::string_view key, const json::value& v, std::optional<unsigned>& into) {
    const auto n = whole_number(v);
    if (!n || *n < 1 || *n > 65535) return wrong(key, "an integer from 1 to 65535", v);
    into = static_cast<unsigned>(*n);
    return true;
  }
  bool read_seconds(std::string_view key, const json::value& v, std::optional<unsigned>& into,
                    unsigned least = 1) {
    const auto n = whole_number(v);
    if (!n || *n < least || *n > max_timeout_seconds)
      return wrong(key,
                   "a whole number of seconds from " + std::to_string(least) + " to " +
                       std::to_string(max_timeout_seconds),
                   v);
    into = static_cast<unsigned>(*n);
    return true;
  }
  bool read_hub_url(std::string_view key, const json::value& v, std::optional<std::string>& into) {
    const json::string* s = v.if_string();
    const std::string low = s ? lower(*s) : std::string();
    const bool http = low.starts_with("http://") && low.size() > 7;
    const bool https = low.starts_with("https://") && low.size() > 8;
    if (!http && !https) return wrong(key, "an http:// or https:// URL", v);
    into = std::string(*s);
    return true;
  }
  bool read_bind(std::string_view key, const json::value& v, std::optional<std::string>& into) {
    // Numeric only, as the listener takes it: a name here would fail later, far from the file.
    if (!v.is_string() || !is_ip_address(std::string(v.get_string())))
      return wrong(key, "an IP address such as \"127.0.0.1\" or \"::1\"", v);
    into = std::string(v.get_string());
    return true;
  }
  bool read_domains(std::string_view key, const json::value& v, std::vector<std::string>& into) {
    const json::array* list = v.if_array();
    if (!list) return wrong(key, "an array of domain names such as [\"test\"]", v);
    into.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json::value& item = (*list)[i];
      std::string domain = item.is_string() ? lower(item.get_string()) : std::string();
      // Dots at the ends are forgiven (".test" and "test." mean "test"), as route::table does.
      while (!domain.empty() && domain.front() == '.') domain.erase(0, 1);
      while (!domain.empty() && domain.back() == '.') domain.pop_back();
      if (!is_route_name(domain))
        return wrong(std::string(key) + "[" + std::to_string(i) + "]", "a domain name such as \"test\"",
                     item);
      into.push_back(std::move(domain));
    }
    return true;
  }
  // "inspect": false, true, or {"requests": 1000, "bodyBytes": 16384} (product.md, Inspector).
  bool read_inspect(const json::value& v, config::inspect_s& into) {
    if (v.is_bool()) {
      into.enabled = v.get_bool();
      return true;
    }
    const json::object* o = v.if_object();
    if (!o) return wrong("inspect", "false or an object such as {\"requests\": 1000}", v);
    into.enabled = true;
    for (const auto& [key, item] : *o) {
      const std::string path = "inspect." + std::string(key);
      if (item.is_null()) continue;
      const auto n = whole_number(item);
      if (key == "requests") {
        if (!n || *n < 1 || *n > 100000) return wrong(path, "an integer from 1 to 100000", item);
        into.requests = static_cast<unsigned>(*n);
      } else if (key == "bodyBytes") {
        if (!n || *n < 0 || *n > 16 * 1024 * 1024) return wrong(path, "an integer from 0 to 16777216", item);
        into.body_bytes = static_cast<std::uint64_t>(*n);
      } else if (!unknown(path)) {
        return false;
      }
    }
    return true;
  }
  bool read_timeouts(const json::value& v, config::timeouts_s& into) {
    const json::object* o = v.if_object();
    if (!o) return wrong("timeouts", "an object such as {\"connect\": 5}", v);
    for (const auto& [key, item] : *o) {
      const std::string path = "timeouts." + std::string(key);
      std::optional<unsigned>* field = key == "header"       ? &into.header
                                       : key == "connect"    ? &into.connect
                                       : key == "idle"       ? &into.idle
                                       : key == "response"   ? &into.response
                                       : key == "tunnelIdle" ? &into.tunnel_idle
                                       : key == "hold"       ? &into.hold
                                                             : nullptr;
      if (!field) {
        if (!unknown(path)) return false;
      } else if (!item.is_null() && !read_seconds(path, item, *field, field == &into.hold ? 0 : 1)) {
        return false;
      }
    }
    return true;
  }
  bool read_routes(const json::value& v, std::vector<route::route>& into) {
    const json::array* list = v.if_array();
    if (!list) return wrong("routes", "an array of routes such as [{\"name\": \"web\", \"port\": 5173}]", v);
    into.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string at = "routes[" + std::to_string(i) + "]";
      const json::object* o = (*list)[i].if_object();
      if (!o) return wrong(at, "an object such as {\"name\": \"web\", \"port\": 5173}", (*list)[i]);
      route::route r;
      r.from = route::source::config;
      r.host = "localhost";
      bool named = false;
      bool ported = false;
      for (const auto& [key, item] : *o) {
        const std::string path = at + "." + std::string(key);
        if (key == "name") {
          if (!item.is_string() || !is_route_name(item.get_string()))
            return wrong(path, "a DNS name of letters, digits and hyphens such as \"web\" or \"api.v2\"",
                         item);
          r.name = lower(item.get_string());
          named = true;
        } else if (key == "port") {
          std::optional<unsigned> port;
          if (!read_port(path, item, port)) return false;
          r.port = static_cast<std::uint16_t>(*port);
          ported = true;
        } else if (key == "host") {
          if (item.is_null()) continue;
          const auto host = item.is_string() ? upstream_host(item.get_string()) : std::nullopt;
          if (!host) return wrong(path, "\"localhost\" or an IP address", item);
          r.host = *host;
        } else if (!unknown(path)) {
          return false;
        }
      }
      if (!named || !ported)
        return fail(quoted(at + (named ? ".port" : ".name")) +
                    " is missing: each route needs a \"name\" and a \"port\"");
      // Two routes of one name in one file is a mistake to show, not something to settle silently.
      for (std::size_t j = 0; j < into.size(); ++j)
        if (into[j].name == r.name)
          return fail(quoted(at + ".name") + " repeats " + quoted(r.name) + " from routes[" +
                      std::to_string(j) + "]");
      into.push_back(std::move(r));
    }
    return true;
  }

  std::string prefix_;
  bool strict_;
  std::vector<std::string>& warnings_;
  std::string error_;
};

std::string without_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// `s` as one shell word: as it is when that is safe, else single-quoted.
std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || std::strchr("/._-+:@%,", ch) != nullptr;
  });
  if (plain) return s;
  std::string out = "'";
  for (const char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The password database's home: the fallback when HOME is unset, as for some service managers' children.
std::string passwd_home() {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found || !found->pw_dir)
    return {};
  return found->pw_dir;
}

}  // namespace

config_result parse_config(std::string_view json_text, const std::string& path, bool strict) {
  config_result out;
  const std::string prefix = "config file " + path + ": ";
  std::string error;
  const std::optional<json::value> doc = parse_json(json_text, error);
  if (!doc) {
    out.error = prefix + error;
    return out;
  }
  config c;
  config_reader reader(prefix, strict, out.warnings);
  if (!reader.read(*doc, c)) {
    out.error = reader.error();
    return out;
  }
  out.value = std::move(c);
  return out;
}

config_result read_config_file(const std::string& path, bool strict) {
  std::string text;
  // The home config.json is read as it is, never through a link (the home is ours alone); a file the
  // user names on the command line may be one.
  const links rule = strict ? links::follow : links::refuse;
  if (const int err = read_small_file(path, text, max_route_file_bytes, rule); err != 0) {
    config_result out;
    // The home config.json is optional; a file the user named on the command line is not.
    if (err == ENOENT && !strict) {
      out.value = config{};
    } else if (err == ELOOP && rule == links::refuse) {
      out.error = "config file " + path + ": cannot read: it is a symbolic link";
    } else {
      out.error = "config file " + path + ": cannot read: " + std::strerror(err);
    }
    return out;
  }
  return parse_config(text, path, strict);
}

std::string home_folder() {
  if (const char* own = std::getenv("PRIVATECONNECT_HOME"); own && *own) return without_trailing_slashes(own);
  const char* env_home = std::getenv("HOME");
  std::string base = env_home && *env_home ? std::string(env_home) : passwd_home();
  if (base.empty()) return {};
  base = without_trailing_slashes(std::move(base));
  return (base == "/" ? std::string() : base) + "/.privateconnect";
}

bool ensure_home_folder(std::string& error) {
  const std::string home = home_folder();
  if (home.empty()) {
    error = "cannot find the home folder: set PRIVATECONNECT_HOME or HOME";
    return false;
  }
  // Each missing component in turn, as mkdir -p does: PRIVATECONNECT_HOME may name a fresh nested path.
  for (std::size_t end = home.find('/', 1);; end = home.find('/', end + 1)) {
    const std::string part = end == std::string::npos ? home : home.substr(0, end);
    if (::mkdir(part.c_str(), 0700) == 0) {
      // The umask may have taken owner bits away; the contract says 0700.
      ::chmod(part.c_str(), 0700);
    } else if (errno != EEXIST) {
      error = "cannot create the home folder " + home + ": " + (part == home ? "" : part + ": ") +
              std::strerror(errno);
      return false;
    }
    if (end == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(home.c_str(), &st) != 0) {
    error = "cannot use the home folder " + home + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    error = "cannot use the home folder " + home + ": it exists but is not a folder";
    return false;
  }
  // Whoever else owns the folder or may write to it can plant links (proxy.log -> a file of their
  // choice) or swap files (certs/ca.crt) under a process that trusts them, root included.
  if (st.st_uid != ::geteuid()) {
    error = "cannot use the home folder " + home + ": it belongs to uid " + std::to_string(st.st_uid) +
            ", not to uid " + std::to_string(::geteuid()) +
            " that runs connect — set PRIVATECONNECT_HOME to a folder of your own";
    return false;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    error = "cannot use the home folder " + home + ": other users can write to it (mode " + mode +
            ") — run: chmod 700 " + shell_word(home);
    return false;
  }
  return true;
}

bool is_route_name(std::string_view name, bool allow_underscore) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (!std::isalnum(c) && c != '-' && !(allow_underscore && c == '_')) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<std::string> upstream_host(std::string_view host) {
  std::string h = lower(host);
  if (h == "localhost") return h;
  const bool bracketed = h.size() > 2 && h.front() == '[' && h.back() == ']';
  if (bracketed) h = h.substr(1, h.size() - 2);
  in_addr v4{};
  in6_addr v6{};
  if (!bracketed && ::inet_pton(AF_INET, h.c_str(), &v4) == 1) return h;
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) return h;
  return std::nullopt;
}

int read_small_file(const std::string& path, std::string& out, std::size_t limit, links rule) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (rule == links::refuse ? O_NOFOLLOW : 0));
  if (fd < 0) return errno;
  out.clear();
  char chunk[65536];
  int err = 0;
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > limit) {
      err = EFBIG;
      break;
    }
    out.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (err != 0) out.clear();
  return err;
}

std::string text_position(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t last_newline = before.rfind('\n');
  const std::size_t column = last_newline == std::string_view::npos ? offset + 1 : offset - last_newline;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace cproxy::control
