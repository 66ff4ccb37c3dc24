// The system trust store: the platform's store (connect/platform/system_trust_store.hpp) under ROOT, the
// anchor written and removed, and a chain verification against its bundle. ROOT is CONNECT_PROXY_TRUST_ROOT
// (default "/"), so that tests fill a store of their own; only Debian's tool can write under another root.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "connect/config/atomic_file.hpp"
#include "connect/config/config_file.hpp"
#include "connect/core/log.hpp"
#include "connect/platform/system_trust_store.hpp"
#include "trust_detail.hpp"

namespace cproxy::control::trust {
namespace {

constexpr const char* anchor_name = "private-connect-local-ca.crt";

std::string trust_root() {
  const char* env = std::getenv("CONNECT_PROXY_TRUST_ROOT");
  std::string root = env && *env ? env : "/";
  while (!root.empty() && root.back() == '/') root.pop_back();
  return root;
}

// True when this user may create or replace files in `dir` (or in the nearest folder that exists above
// it, when `dir` is still missing).
bool may_write(std::string dir) {
  for (;;) {
    if (::access(dir.c_str(), F_OK) == 0) return ::access(dir.c_str(), W_OK) == 0;
    const auto slash = dir.rfind('/');
    if (slash == std::string::npos || slash == 0) return ::access("/", W_OK) == 0;
    dir.resize(slash);
  }
}

std::string parent_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Runs the distribution's update tool; "" when it succeeded, else the line's reason.
std::string run_update(const std::vector<std::string>& argv) {
  const std::string program = find_program(argv[0]);
  if (program.empty()) return argv[0] + " not found";
  std::vector<std::string> resolved = argv;
  resolved[0] = program;
  const command_result r = run_command(resolved);
  if (r.started && r.exit_code == 0) return {};
  return command_failure(argv[0], r);
}

// Writes the CA to the anchor file, atomically: a tool running meanwhile never reads half a certificate.
std::string write_anchor(const distribution& d, const std::string& ca_path) {
  // The CA lives in the home folder, and this often runs as root: read as it is, never through a link.
  std::string pem;
  if (const int error = read_small_file(ca_path, pem, std::size_t{1} << 20, links::refuse); error != 0)
    return "cannot read " + shown_path(ca_path) + ": " + std::strerror(error);
  std::error_code ec;
  std::filesystem::create_directories(d.anchor_dir, ec);
  if (ec) return "cannot create " + d.anchor_dir + ": " + ec.message();
  return write_file_atomically(d.anchor, pem, 0644);
}

// The roots the store's bundle holds; empty with `error` set when it cannot be read.
std::vector<tls::x509_ptr> bundle_roots(const distribution& d, std::string& error) {
  std::string text;
  if (!read_file(d.bundle, text)) {
    error = "cannot read " + d.bundle;
    return {};
  }
  auto roots = certs_from_pem(text);
  if (roots.empty()) error = d.bundle + " holds no certificate";
  return roots;
}

const char* const needs_root = "  [!] System trust store needs root — run: ";

}  // namespace

std::optional<distribution> detect_distribution(std::string& error) {
  const std::string root = trust_root();
  std::optional<platform::system_trust_store> store = platform::find_system_trust_store(root, error);
  if (!store) return std::nullopt;
  std::string anchor = store->anchor_dir + "/" + anchor_name;
  return distribution{std::move(*store), root, std::move(anchor)};
}

store_line system_add(const std::string& ca_path, const X509& ca) {
  std::string error;
  const auto d = detect_distribution(error);
  if (!d)
    return {false, "  [x] System trust store: " + error + " — add " + shown_path(ca_path) + " to it by hand"};
  const std::string tool = d->update_after_add[0];
  if (!d->root.empty() && !d->relocatable)
    return {false,
            "  [x] System trust store: " + tool + " cannot write under CONNECT_PROXY_TRUST_ROOT=" + d->root};
  if (!may_write(d->anchor_dir) || !may_write(parent_of(d->bundle)))
    return {false, needs_root + std::string("sudo cp ") + ca_path + " " + d->anchor + " && sudo " +
                       joined(d->update_after_add)};
  if (find_program(tool).empty()) return {false, "  [x] System trust store: " + tool + " not found"};
  if (error = write_anchor(*d, ca_path); !error.empty()) return {false, "  [x] System trust store: " + error};
  if (error = run_update(d->update_after_add); !error.empty())
    return {false, "  [x] System trust store: " + error};
  if (!system_trusts(ca))
    return {false, "  [x] System trust store: " + tool + " ran, but " + d->bundle + " does not trust the CA"};
  return {true, "  [ok] CA added to system trust store"};
}

store_line system_remove(const X509* ca) {
  std::string error;
  const auto d = detect_distribution(error);
  if (!d) return {false, "  [x] System trust store: " + error};
  const std::string tool = d->update_after_remove[0];
  if (::access(d->anchor.c_str(), F_OK) != 0) return {true, "  [ok] CA was not in system trust store"};
  if (!d->root.empty() && !d->relocatable)
    return {false,
            "  [x] System trust store: " + tool + " cannot write under CONNECT_PROXY_TRUST_ROOT=" + d->root};
  if (!may_write(d->anchor_dir) || !may_write(parent_of(d->bundle)))
    return {false, needs_root + std::string("sudo rm -f ") + d->anchor + " && sudo " +
                       joined(d->update_after_remove)};
  if (find_program(tool).empty()) return {false, "  [x] System trust store: " + tool + " not found"};
  if (::unlink(d->anchor.c_str()) != 0)
    return {false, "  [x] System trust store: cannot remove " + d->anchor + ": " + std::strerror(errno)};
  if (error = run_update(d->update_after_remove); !error.empty())
    return {false, "  [x] System trust store: " + error};
  // Debian's tool keeps the old bundle when no certificate at all is left to write a new one from.
  if (ca && system_trusts(*ca))
    return {false, "  [x] System trust store: " + tool + " ran, but " + d->bundle + " still trusts the CA"};
  return {true, "  [ok] CA removed from system trust store"};
}

store_line system_check(const tls::key_pair& ca) {
  std::string error;
  const auto d = detect_distribution(error);
  if (!d) return {false, "  [x] System trust store: " + error};
  const auto roots = bundle_roots(*d, error);
  if (roots.empty()) return {false, "  [x] System trust store does not trust the CA: " + error};
  if (ca.key) {
    // What a browser does: a leaf of the CA for a name under localhost, verified up to the store's roots.
    try {
      const auto now = std::chrono::system_clock::now();
      const tls::key_pair leaf = tls::mint_leaf(ca, {"api.localhost"}, now);
      std::vector<const X509*> trusted;
      for (const auto& r : roots) trusted.push_back(r.get());
      error = tls::verify_chain(*leaf.cert, trusted, "api.localhost", now);
    } catch (const std::exception& e) {
      error = e.what();
    }
  } else if (!verifies_as_root(*ca.cert, roots)) {
    error = "not in " + d->bundle;
  }
  if (!error.empty()) return {false, "  [x] System trust store does not trust the CA: " + error};
  return {true, "  [ok] System trust store trusts the CA"};
}

bool system_trusts(const X509& ca) {
  std::string error;
  const auto d = detect_distribution(error);
  if (!d) return false;
  const auto roots = bundle_roots(*d, error);
  return !roots.empty() && verifies_as_root(ca, roots);
}

}  // namespace cproxy::control::trust
