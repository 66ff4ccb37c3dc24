// config_file: reads config.json (the home folder's, or the file `--config FILE` names) into a `config`,
// and finds the home folder. Reads files but keeps no state: no defaults applied, no merging with the
// command line (the caller's job: the command line wins), no watching.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connect/route/table.hpp"

namespace cproxy::control {

// What one config file sets. An absent key (or one set to null) stays unset, so command-line options
// and built-in defaults can fill it in.
struct config {
  std::optional<std::string> api_key, hub_url, bind;  // hubUrl: http:// or https://; bind: numeric IP
  std::optional<unsigned> port;                       // 1..65535
  std::optional<bool> https, quiet;
  std::vector<std::string> domains;  // lowercase, without dots at the ends: "test" for NAME.test
  struct timeouts_s {
    // Whole seconds, 1..max_timeout_seconds.
    std::optional<unsigned> header, connect, idle, response, tunnel_idle;
    // Whole seconds, 0..max_timeout_seconds: how long a refused upstream is retried (0: never).
    std::optional<unsigned> hold;
  } timeouts;
  std::vector<route::route> routes;  // source::config, names lowercase, host "localhost" unless given
  struct inspect_s {
    std::optional<bool> enabled;              // "inspect": false turns the inspector off
    std::optional<unsigned> requests;         // 1..100000
    std::optional<std::uint64_t> body_bytes;  // 0..16 MiB
  } inspect;
};

// The largest timeout: seconds that still fit an int count of milliseconds (2^31 - 1 ms, ~24.8 days),
// the unit poll-style timeouts take.
inline constexpr unsigned max_timeout_seconds = 2147483;

// `value` is set exactly when `error` is empty. Every text starts with "config file PATH: ".
struct config_result {
  std::optional<config> value;
  std::string error;
  std::vector<std::string> warnings;  // unknown keys in a non-strict file, one line each
};

// Reads and checks one config file (the contract's "Files" section).
// - `strict` is for the file `--config` names: an unknown key anywhere is an error,
//   `config file PATH: unknown key "foo"` (nested keys by path: "timeouts.foo", "routes[1].bar", with
//   0-based indexes). Not strict is for the home config.json, which other tools also write: the same
//   text becomes a warning and reading goes on; it is never read through a symbolic link
//   (`config file PATH: cannot read: it is a symbolic link`).
// - A missing file is an empty config when not strict; when strict, and for any other read failure,
//   `config file PATH: cannot read: <strerror>`.
// - Invalid JSON: `config file PATH: invalid JSON at line L, column C: <Boost.JSON message>`
//   (`invalid JSON: the file is empty` for an empty or blank file).
// - A wrong type or value, in either mode: `config file PATH: "KEY" must be EXPECTED, not VALUE`, VALUE
//   being the JSON found (cut at 40 characters). A route without a name or port:
//   `"routes[0].port" is missing: each route needs a "name" and a "port"`; two routes of one name
//   (case-insensitive): `"routes[1].name" repeats "web" from routes[0]`.
config_result read_config_file(const std::string& path, bool strict);

// The same checks on text already read; `path` only names the file in the texts.
config_result parse_config(std::string_view json_text, const std::string& path, bool strict);

// $PRIVATECONNECT_HOME when set and non-empty, else $HOME/.privateconnect (the password database's home
// when HOME is unset or empty, as under some service managers); trailing slashes dropped. Empty when no
// home can be found at all.
std::string home_folder();

// Creates home_folder() with mode 0700 when it is missing (and any missing parents, like mkdir -p). An
// existing folder is left as it is, but refused unless it belongs to the effective user and neither
// group nor others can write to it: whoever can write there can plant links under us. false with
// `error` set ("cannot use the home folder HOME: other users can write to it (mode 0777) — run: chmod
// 700 HOME", "...: it belongs to uid U, not to uid E that runs connect — set PRIVATECONNECT_HOME to a
// folder of your own") when it cannot be created, is not a folder, or is refused.
bool ensure_home_folder(std::string& error);

// Rules both route files follow (active_routes.cpp uses them too).

// A route name: dot-separated DNS labels of [a-z0-9-], case-insensitive, each 1..63 long and not starting
// or ending with '-'; at most 253 in all. `allow_underscore` also admits '_' in labels, which
// active-routes.json names may carry (curl and browsers send such hosts as they are).
bool is_route_name(std::string_view name, bool allow_underscore = false);

// The form route::route::host takes: "localhost" (any case), or a numeric IPv4 or IPv6 address ("[::1]"
// is accepted and unbracketed), because upstreams are dialled without name resolution. nullopt otherwise.
std::optional<std::string> upstream_host(std::string_view host);

// Whether a read goes through a symbolic link at the end of the path: files the user names may be
// links; files of the home folder are read as they are (O_NOFOLLOW), never through one.
enum class links { follow, refuse };

// Reads a whole file of at most `limit` bytes into `out`: 0, or the errno that stopped it (EFBIG when the
// file is larger; ELOOP for a link under links::refuse). The limit keeps a wrong path (a log, a device)
// from being read whole.
int read_small_file(const std::string& path, std::string& out, std::size_t limit, links rule = links::follow);
inline constexpr std::size_t max_route_file_bytes = std::size_t{4} << 20;

// "line L, column C" (1-based, columns in bytes) for byte `offset` of `text`, for JSON syntax errors.
std::string text_position(std::string_view text, std::size_t offset);

}  // namespace cproxy::control
