// trust_store: the local CA in the trust stores browsers and tools read on Linux: the system store of
// the distribution found (Debian/Ubuntu, Fedora/RHEL, Arch, SUSE) and the NSS databases of Chrome,
// Chromium and Firefox (with certutil). Installs, checks by a real chain verification, removes. Not the
// CA itself: cert_store.hpp makes and keeps it.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "connect/config/proxy_options.hpp"

namespace cproxy::control {

enum class trust_action { trust, check, untrust };

// `connect proxy trust`, `trust --check`, `untrust`: prints the block (one line per store, texts in
// docs/control-plane.md "Trust stores") and returns the exit code: 0 when every store did what was asked
// (check: every store found trusts the CA), else 1. Resolves the settings for the home folder and the
// dev domains; trust makes the CA first when it is missing.
int run_trust(trust_action action, const proxy_options& options);

// For `start --https`: true when the system store or ~/.pki/nssdb trusts `ca` (a chain verification of
// the CA against the system bundle; certutil -V in the NSS database). Quick; changes nothing.
bool ca_is_trusted(const X509& ca);

// For `start --https --trust`: installs home's certs/ca.crt (made already) into every store, as `trust`
// does, and returns its per-store lines ("  [ok] CA added to system trust store", ...). What the tools
// print goes to the log.
std::vector<std::string> install_ca_lines(const std::string& home);

// For `doctor`: the CA as home's certs/ca.crt holds it and, when it is usable, each store's verdict as
// `trust --check` prints it (the same lines, in its order). Makes, installs and changes nothing.
struct ca_check {
  bool present = false;  // certs/ca.crt can be read
  std::string problem;   // present but unusable: the parse error
  std::chrono::system_clock::time_point not_after;
  std::vector<std::pair<bool, std::string>> stores;  // {trusts, "  [ok] System trust store trusts the CA"}
};
ca_check check_ca(const std::string& home);

}  // namespace cproxy::control
