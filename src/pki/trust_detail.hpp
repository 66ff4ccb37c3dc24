// The pieces of trust_store.cpp: running the store tools (no shell), the system store of each
// distribution (trust_system.cpp) and the NSS databases (trust_nss.cpp). Each operation returns its
// printed lines; nothing here prints. Internal to connect_control.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connect/platform/system_trust_store.hpp"
#include "connect/tls/certificate.hpp"

namespace cproxy::control::trust {

// The name NSS databases keep the CA under (certutil -n), the CA's common name.
inline constexpr std::string_view nickname = tls::ca_common_name;

// One printed line of a store and whether that store is now as asked.
struct store_line {
  bool ok = false;
  std::string text;
};

// --- commands (trust_store.cpp) ---

struct command_result {
  bool started = false;  // false: the program could not be run (output says why)
  int exit_code = -1;    // 128 + signal when a signal ended it
  std::string output;    // stdout and stderr, interleaved
};
// The absolute path of `name` in $PATH, then /usr/local/sbin, /usr/sbin, /sbin (a user's PATH often lacks
// them); "" when absent.
std::string find_program(std::string_view name);
// Runs argv (argv[0] an absolute path) with stdin /dev/null, no shell, default signal mask, and waits.
// The output goes to the log, never to the terminal.
command_result run_command(const std::vector<std::string>& argv);
// "certutil exited with 255: could not find certificate..." (first line of its output).
std::string command_failure(const std::string& program, const command_result& r);
// `path` with the user's $HOME shown as "~".
std::string shown_path(const std::string& path);
std::string home_dir();  // $HOME without a trailing slash ("" when unset)
// Reads a whole file; false when it cannot.
bool read_file(const std::string& path, std::string& out);
// Every certificate in a PEM file (a CA bundle, certutil -a output).
std::vector<tls::x509_ptr> certs_from_pem(std::string_view pem);
// True when `ca` itself verifies against `roots` (a self-signed root verifies only if it is among them).
bool verifies_as_root(const X509& ca, const std::vector<tls::x509_ptr>& roots);

// --- the system store (trust_system.cpp) ---

// The platform's store (its folders under root, its tools) and where this product's anchor goes in it.
struct distribution : platform::system_trust_store {
  std::string root;    // CONNECT_PROXY_TRUST_ROOT without trailing slashes ("" for "/")
  std::string anchor;  // anchor_dir + "/private-connect-local-ca.crt"
};

// The platform's store under CONNECT_PROXY_TRUST_ROOT; nullopt with `error` set ("unknown distribution
// 'gentoo' (/etc/os-release)") when the platform does not know it.
std::optional<distribution> detect_distribution(std::string& error);

store_line system_add(const std::string& ca_path, const X509& ca);
store_line system_remove(const X509* ca);  // ca: to confirm it is gone (null: not known)
// With the CA's key: a leaf for api.localhost minted now and verified up to the bundle; without it (a
// ca.key this user cannot read), the CA alone against the bundle.
store_line system_check(const tls::key_pair& ca);
bool system_trusts(const X509& ca);  // quick: the CA verifies against the bundle

// --- NSS databases (trust_nss.cpp) ---

struct nss_db {
  std::string dir;    // the folder of cert9.db (certutil -d sql:DIR)
  std::string label;  // "NSS database ~/.pki/nssdb (Chrome, Chromium)", "Firefox profile ~/..."
  bool exists = false;
  bool chrome = false;  // ~/.pki/nssdb: made when missing
};

// ~/.pki/nssdb (even when missing), then each Firefox profile folder holding cert9.db.
std::vector<nss_db> nss_databases();
store_line nss_add(const std::string& certutil, const nss_db& db, const std::string& ca_path, const X509& ca);
store_line nss_remove(const std::string& certutil, const nss_db& db);
store_line nss_check(const std::string& certutil, const nss_db& db, const X509& ca);
bool nss_trusts(const std::string& certutil, const nss_db& db, const X509& ca);

}  // namespace cproxy::control::trust
