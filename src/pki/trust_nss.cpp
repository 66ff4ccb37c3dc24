// The NSS databases browsers read on Linux: ~/.pki/nssdb (Chrome, Chromium; made when missing) and each
// Firefox profile (deb, snap and flatpak folders). Filled, checked and emptied with certutil from
// libnss3-tools; the CA is kept under its common name as nickname.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "trust_detail.hpp"

namespace cproxy::control::trust {
namespace {

namespace fs = std::filesystem;

// At most this many certificates are deleted under our nickname (older CAs piled up by hand).
constexpr int max_deletions = 16;

std::string db_arg(const nss_db& db) {
  return "sql:" + db.dir;
}

command_result certutil_run(const std::string& certutil, const nss_db& db, std::vector<std::string> args) {
  std::vector<std::string> argv{certutil, "-d", db_arg(db)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

bool has_cert9(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir + "/cert9.db", ec);
}

// Deletes every certificate under our nickname; the number deleted.
int delete_ours(const std::string& certutil, const nss_db& db) {
  int deleted = 0;
  while (deleted < max_deletions) {
    const auto r = certutil_run(certutil, db, {"-D", "-n", std::string(nickname)});
    if (!r.started || r.exit_code != 0) break;
    ++deleted;
  }
  return deleted;
}

// "" when the database trusts `ca` as an SSL CA under our nickname, else why not.
std::string why_not_trusted(const std::string& certutil, const nss_db& db, const X509& ca) {
  const auto listed = certutil_run(certutil, db, {"-L", "-n", std::string(nickname), "-a"});
  if (!listed.started) return command_failure("certutil", listed);
  const auto certs = certs_from_pem(listed.output);
  if (listed.exit_code != 0 || certs.empty()) return "not in the database";
  const std::string ours = tls::sha256_fingerprint(ca);
  const bool found = std::any_of(certs.begin(), certs.end(),
                                 [&](const tls::x509_ptr& c) { return tls::sha256_fingerprint(*c) == ours; });
  if (!found) return "it holds another certificate named " + std::string(nickname);
  const auto verified = certutil_run(certutil, db, {"-V", "-n", std::string(nickname), "-u", "L"});
  if (verified.started && verified.exit_code == 0) return {};
  return command_failure("certutil", verified);
}

// The database Chrome and Chromium read: ~/.pki/nssdb when that folder exists, else the XDG one
// ($XDG_DATA_HOME/pki/nssdb, ~/.local/share/pki/nssdb) that newer versions make on their first run.
// Making ~/.pki/nssdb beside an XDG database would switch the browser to a new, empty database and
// hide the user's other certificates from it, so ~/.pki/nssdb is made only when neither exists.
nss_db chrome_database(const std::string& home) {
  std::error_code ec;
  std::string dir = home + "/.pki/nssdb";
  if (!fs::is_directory(dir, ec)) {
    const char* xdg = std::getenv("XDG_DATA_HOME");
    const std::string xdg_dir =
        (xdg && *xdg == '/' ? std::string(xdg) : home + "/.local/share") + "/pki/nssdb";
    if (fs::is_directory(xdg_dir, ec)) dir = xdg_dir;
  }
  return {dir, "NSS database " + shown_path(dir) + " (Chrome, Chromium)", has_cert9(dir), true};
}

}  // namespace

std::vector<nss_db> nss_databases() {
  std::vector<nss_db> out;
  const std::string home = home_dir();
  if (home.empty()) return out;
  out.push_back(chrome_database(home));
  for (const char* base : {"/.mozilla/firefox", "/snap/firefox/common/.mozilla/firefox",
                           "/.var/app/org.mozilla.firefox/.mozilla/firefox"}) {
    std::error_code ec;
    std::vector<std::string> profiles;
    for (fs::directory_iterator it(home + base, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec) && has_cert9(it->path().string())) profiles.push_back(it->path().string());
    std::sort(profiles.begin(), profiles.end());
    for (auto& p : profiles) out.push_back({p, "Firefox profile " + shown_path(p), true, false});
  }
  return out;
}

store_line nss_add(const std::string& certutil, const nss_db& db, const std::string& ca_path,
                   const X509& ca) {
  const std::string failed = "  [x] Could not add CA to " + db.label + ": ";
  if (!db.exists) {
    std::error_code ec;
    fs::create_directories(db.dir, ec);
    if (ec) return {false, failed + "cannot create " + shown_path(db.dir) + ": " + ec.message()};
    ::chmod(db.dir.c_str(), 0700);
    const auto made = certutil_run(certutil, db, {"-N", "--empty-password"});
    if (!made.started || made.exit_code != 0) return {false, failed + command_failure("certutil", made)};
  }
  // An older CA under the same nickname would shadow the new one: replace it.
  delete_ours(certutil, db);
  const auto added =
      certutil_run(certutil, db, {"-A", "-t", "C,,", "-n", std::string(nickname), "-i", ca_path});
  if (!added.started || added.exit_code != 0) return {false, failed + command_failure("certutil", added)};
  if (const std::string why = why_not_trusted(certutil, db, ca); !why.empty()) return {false, failed + why};
  return {true, "  [ok] CA added to " + db.label};
}

store_line nss_remove(const std::string& certutil, const nss_db& db) {
  const int deleted = delete_ours(certutil, db);
  const auto left = certutil_run(certutil, db, {"-L", "-n", std::string(nickname)});
  if (left.started && left.exit_code == 0)
    return {false, "  [x] Could not remove CA from " + db.label + ": it is still listed"};
  if (deleted == 0) return {true, "  [ok] CA was not in " + db.label};
  return {true, "  [ok] CA removed from " + db.label};
}

store_line nss_check(const std::string& certutil, const nss_db& db, const X509& ca) {
  if (const std::string why = why_not_trusted(certutil, db, ca); !why.empty())
    return {false, "  [x] " + db.label + " does not trust the CA: " + why};
  return {true, "  [ok] " + db.label + " trusts the CA"};
}

bool nss_trusts(const std::string& certutil, const nss_db& db, const X509& ca) {
  return why_not_trusted(certutil, db, ca).empty();
}

}  // namespace cproxy::control::trust
