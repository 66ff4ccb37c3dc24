// Certificates for HTTPS, made with OpenSSL 3's EVP and X509 APIs (never the openssl tool): the local
// CA, the leaves it signs, PEM in and out, and chain verification. Pure functions: no files, no I/O.
// The control plane decides where the PEM text lives (certs/ in the home folder); the data path mints
// leaves from the CA it is given.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cproxy::tls {

struct x509_free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
struct pkey_free {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

// A certificate and its private key.
struct key_pair {
  x509_ptr cert;
  pkey_ptr key;
};

using sys_time = std::chrono::system_clock::time_point;

// The CA's subject common name; trust stores list it under this name.
inline constexpr std::string_view ca_common_name = "Private Connect Local CA";
// How long a minted leaf lives: under the 398 days browsers accept.
inline constexpr std::chrono::hours leaf_lifetime{24 * 397};
// A leaf or CA this close to its end is made again.
inline constexpr std::chrono::hours renew_before{24 * 30};

// A new CA: ECDSA P-256, 10 years from `now`, basicConstraints CA:TRUE critical, keyUsage
// keyCertSign+cRLSign (critical), subject and authority key identifiers, and name constraints
// (critical) permitting only dNSName `localhost` and each of `dev_domains`, and IP 127.0.0.0/8 and
// ::1/128. Dev domains are listed as given, once each; an empty one throws std::runtime_error (an empty
// dNSName subtree permits every name). Throws std::runtime_error if OpenSSL fails.
key_pair make_ca(const std::vector<std::string>& dev_domains, sys_time now);

// A leaf signed by `ca` for `names` (DNS names or IP literals): ECDSA P-256, keyUsage digitalSignature
// (critical), EKU serverAuth, SAN = the names in order (IP literals as iPAddress), basicConstraints
// CA:FALSE (critical), key identifiers, valid from an hour before `now` for leaf_lifetime. The subject
// CN is the first name, unless it is an IP literal (OpenSSL would check a CN like "127.0.0.1" against
// the CA's DNS name constraints and refuse the leaf) or longer than 64 characters: then the subject is
// empty and the SAN critical. Throws std::runtime_error on failure, with no names, or when `ca.key`
// is not the key of `ca.cert`.
key_pair mint_leaf(const key_pair& ca, const std::vector<std::string>& names, sys_time now);

// PEM text.
std::string cert_to_pem(const X509& cert);
std::string key_to_pem(const EVP_PKEY& key);  // PKCS#8, unencrypted
// Parses PEM; on failure returns null and sets `error` to a short reason ("not a PEM certificate",
// "not a PEM private key", "an encrypted private key (no pass phrase is asked for)"). Never prompts.
// Failures leave OpenSSL's error queue as it was (so do key_matches, permitted_dns_names, verify_chain).
x509_ptr cert_from_pem(std::string_view pem, std::string& error);
pkey_ptr key_from_pem(std::string_view pem, std::string& error);

// True when `key` is the private key of `cert` (EVP_PKEY_eq with the certificate's public key).
bool key_matches(const X509& cert, const EVP_PKEY& key);
sys_time not_after(const X509& cert);
// The dNSName subtrees the CA's name constraints permit (empty: none, or no constraints).
std::vector<std::string> permitted_dns_names(const X509& ca);
// "" when the CA carries the name constraints make_ca gives (critical; permitted dNSName `localhost`,
// no empty dNSName, IP exactly 127.0.0.0/8 and ::1/128), else why not: "it has no name constraints",
// "its name constraints are not critical", "its name constraints permit every DNS name", "it does not
// cover localhost", "its name constraints do not limit IP addresses to 127.0.0.0/8 and ::1/128". Other
// dNSName subtrees (dev domains) are not judged here: the caller knows which it wants.
std::string name_constraints_problem(const X509& ca);
// SHA-256 fingerprint, hex upper case with colons (as `openssl x509 -fingerprint -sha256` prints).
std::string sha256_fingerprint(const X509& cert);

// Verifies `leaf` up to the trusted `roots` with OpenSSL's verifier at `now`, for TLS server use and
// host name `host` (a DNS name or an IP literal, IPv6 with or without brackets), name constraints
// included, with X509_V_FLAG_X509_STRICT (RFC 5280 checks as browsers apply them). Returns "" when it
// verifies, else OpenSSL's reason and the depth: "permitted subtree violation (depth 0)",
// "hostname mismatch (depth 0)", "certificate has expired (depth 1)".
std::string verify_chain(const X509& leaf, const std::vector<const X509*>& roots, std::string_view host,
                         sys_time now);

}  // namespace cproxy::tls
