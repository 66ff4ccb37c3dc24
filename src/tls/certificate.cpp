// Implementation of connect/tls/certificate.hpp with OpenSSL 3's EVP and X509 APIs. Every OpenSSL
// object is owned by a unique_ptr; every failure leaves OpenSSL's error queue as it found it.
#include "connect/tls/certificate.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace cproxy::tls {
namespace {

template <auto free_fn>
struct ossl_free {
  template <class T>
  void operator()(T* p) const noexcept {
    free_fn(p);
  }
};
template <class T, auto free_fn>
using ossl_ptr = std::unique_ptr<T, ossl_free<free_fn>>;

using bio_ptr = ossl_ptr<BIO, BIO_free>;
using bignum_ptr = ossl_ptr<BIGNUM, BN_free>;
using extension_ptr = ossl_ptr<X509_EXTENSION, X509_EXTENSION_free>;
using general_name_ptr = ossl_ptr<GENERAL_NAME, GENERAL_NAME_free>;
using general_names_ptr = ossl_ptr<GENERAL_NAMES, GENERAL_NAMES_free>;
using subtree_ptr = ossl_ptr<GENERAL_SUBTREE, GENERAL_SUBTREE_free>;
using name_constraints_ptr = ossl_ptr<NAME_CONSTRAINTS, NAME_CONSTRAINTS_free>;
using octets_ptr = ossl_ptr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using ia5_ptr = ossl_ptr<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using store_ptr = ossl_ptr<X509_STORE, X509_STORE_free>;
using store_ctx_ptr = ossl_ptr<X509_STORE_CTX, X509_STORE_CTX_free>;

// Throws with `what` and the text of OpenSSL's queued errors, which it takes off the queue.
[[noreturn]] void fail(std::string_view what) {
  std::string text(what);
  const char* separator = ": ";
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += separator;
    text += buffer;
    separator = "; ";
  }
  throw std::runtime_error(text);
}

void check(bool ok, std::string_view what) {
  if (!ok) fail(what);
}

// Removes only the errors pushed since it was made (ERR_set_mark), so a probe that fails on purpose
// (a key that does not match, a verification that says no) leaves nothing behind and erases nothing
// that was there before.
class error_scope {
 public:
  error_scope() noexcept { ERR_set_mark(); }
  ~error_scope() { ERR_pop_to_mark(); }
  error_scope(const error_scope&) = delete;
  error_scope& operator=(const error_scope&) = delete;
};

// The 4 or 16 address octets when `text` is an IPv4 or IPv6 literal (no brackets), else null.
octets_ptr ip_octets(const std::string& text) {
  error_scope scope;
  return octets_ptr(a2i_IPADDRESS(text.c_str()));
}

pkey_ptr p256_key() {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "cannot generate a P-256 key");
  return key;
}

// A new version 3 certificate with a random positive 128-bit serial (RFC 5280 allows up to 20 octets;
// CA/Browser Forum asks for at least 64 random bits), its public key, and its validity.
x509_ptr new_cert(const EVP_PKEY& key, sys_time not_before, sys_time not_after_time) {
  x509_ptr cert(X509_new());
  check(cert != nullptr, "cannot allocate a certificate");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "cannot set the certificate version");

  bignum_ptr serial(BN_new());
  check(serial != nullptr, "cannot allocate a serial number");
  do {
    check(BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1,
          "cannot draw a serial number");
  } while (BN_is_zero(serial.get()));
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr,
        "cannot set the serial number");

  check(X509_set_pubkey(cert.get(), const_cast<EVP_PKEY*>(&key)) == 1, "cannot set the public key");
  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 4.1.2.5 requires.
  check(ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(not_before)) !=
            nullptr,
        "cannot set notBefore");
  check(ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(not_after_time)) !=
            nullptr,
        "cannot set notAfter");
  return cert;
}

void add_name_entry(X509_NAME* name, const char* field, std::string_view value) {
  check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) == 1,
        "cannot set the subject name");
}

// An extension from OpenSSL's configuration syntax ("critical,CA:TRUE,pathlen:0"). Only fixed texts go
// through here; names from outside are put in structures, never spliced into this syntax.
void add_conf_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  extension_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  check(ext != nullptr, std::string("cannot make extension ") + OBJ_nid2sn(nid));
  check(X509_add_ext(cert, ext.get(), -1) == 1, std::string("cannot add extension ") + OBJ_nid2sn(nid));
}

general_name_ptr dns_name(const std::string& name) {
  ia5_ptr text(ASN1_IA5STRING_new());
  check(text != nullptr && ASN1_STRING_set(text.get(), name.data(), static_cast<int>(name.size())) == 1,
        "cannot make a DNS name");
  general_name_ptr out(GENERAL_NAME_new());
  check(out != nullptr, "cannot make a DNS name");
  GENERAL_NAME_set0_value(out.get(), GEN_DNS, text.release());
  return out;
}

general_name_ptr ip_name(octets_ptr octets) {
  general_name_ptr out(GENERAL_NAME_new());
  check(out != nullptr, "cannot make an IP name");
  GENERAL_NAME_set0_value(out.get(), GEN_IPADD, octets.release());
  return out;
}

// An IP subtree for name constraints is the address followed by its mask (RFC 5280 4.2.1.10): 8 octets
// for IPv4, 32 for IPv6.
general_name_ptr ip_range(std::initializer_list<unsigned char> address_and_mask) {
  octets_ptr octets(ASN1_OCTET_STRING_new());
  check(octets != nullptr && ASN1_OCTET_STRING_set(octets.get(), std::data(address_and_mask),
                                                   static_cast<int>(address_and_mask.size())) == 1,
        "cannot make an IP range");
  return ip_name(std::move(octets));
}

void permit(NAME_CONSTRAINTS& nc, general_name_ptr base) {
  subtree_ptr subtree(GENERAL_SUBTREE_new());
  check(subtree != nullptr, "cannot make a name constraint");
  GENERAL_NAME_free(subtree->base);
  subtree->base = base.release();
  check(sk_GENERAL_SUBTREE_push(nc.permittedSubtrees, subtree.get()) > 0, "cannot add a name constraint");
  subtree.release();
}

void add_name_constraints(X509* cert, const std::vector<std::string>& dev_domains) {
  name_constraints_ptr nc(NAME_CONSTRAINTS_new());
  check(nc != nullptr, "cannot make name constraints");
  nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
  check(nc->permittedSubtrees != nullptr, "cannot make name constraints");

  std::vector<std::string> domains{"localhost"};
  for (const std::string& domain : dev_domains) {
    // An empty dNSName subtree permits every name: the CA would then be good for any site.
    if (domain.empty()) throw std::runtime_error("make_ca: an empty dev domain would permit every name");
    if (std::find(domains.begin(), domains.end(), domain) == domains.end()) domains.push_back(domain);
  }
  for (const std::string& domain : domains) permit(*nc, dns_name(domain));
  permit(*nc, ip_range({127, 0, 0, 0, 255, 0, 0, 0}));
  permit(*nc, ip_range({0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   1,  //
                        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}));
  check(X509_add1_ext_i2d(cert, NID_name_constraints, nc.get(), 1, X509V3_ADD_DEFAULT) == 1,
        "cannot add name constraints");
}

void sign(X509* cert, const EVP_PKEY& key) {
  check(X509_sign(cert, const_cast<EVP_PKEY*>(&key), EVP_sha256()) > 0, "cannot sign the certificate");
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

bio_ptr memory_bio() {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "cannot allocate a memory BIO");
  return bio;
}

bio_ptr read_bio(std::string_view pem) {
  if (pem.size() > INT_MAX) return nullptr;
  return bio_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Never asks for a pass phrase: OpenSSL's default callback would prompt on the terminal.
int no_password(char*, int, int, void*) {
  return -1;
}

}  // namespace

key_pair make_ca(const std::vector<std::string>& dev_domains, sys_time now) {
  key_pair ca;
  ca.key = p256_key();
  ca.cert = new_cert(*ca.key, now - std::chrono::hours(1), now + std::chrono::years(10));
  X509* cert = ca.cert.get();

  X509_NAME* subject = X509_get_subject_name(cert);
  add_name_entry(subject, "O", "Private Connect");
  add_name_entry(subject, "CN", ca_common_name);
  check(X509_set_issuer_name(cert, subject) == 1, "cannot set the issuer name");

  add_conf_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_conf_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  // The subject key id first: "keyid:always" copies it from the issuer, here the certificate itself.
  add_conf_extension(cert, cert, NID_subject_key_identifier, "hash");
  add_conf_extension(cert, cert, NID_authority_key_identifier, "keyid:always");
  add_name_constraints(cert, dev_domains);
  sign(cert, *ca.key);
  return ca;
}

key_pair mint_leaf(const key_pair& ca, const std::vector<std::string>& names, sys_time now) {
  if (!ca.cert || !ca.key) throw std::runtime_error("mint_leaf: no CA");
  if (names.empty()) throw std::runtime_error("mint_leaf: a leaf needs at least one name");
  if (!key_matches(*ca.cert, *ca.key))
    throw std::runtime_error("mint_leaf: the CA key does not match the CA");

  key_pair leaf;
  leaf.key = p256_key();
  leaf.cert = new_cert(*leaf.key, now - std::chrono::hours(1), now + leaf_lifetime);
  X509* cert = leaf.cert.get();
  check(X509_set_issuer_name(cert, X509_get_subject_name(ca.cert.get())) == 1, "cannot set the issuer name");

  general_names_ptr san(GENERAL_NAMES_new());
  check(san != nullptr, "cannot make the subject alternative names");
  for (const std::string& name : names) {
    octets_ptr octets = ip_octets(name);
    general_name_ptr entry = octets ? ip_name(std::move(octets)) : dns_name(name);
    check(sk_GENERAL_NAME_push(san.get(), entry.get()) > 0, "cannot add a subject alternative name");
    entry.release();
  }
  // CN is the first name when it can be one: at most 64 characters (RFC 5280 ub-common-name) and not
  // an IP literal. OpenSSL checks a CN that looks like a host name ("127.0.0.1" does) against the
  // CA's DNS name constraints when the SAN has no DNS name, so an IP-only leaf with CN=127.0.0.1
  // fails verification in OpenSSL clients such as curl. Without a CN the subject is empty and the SAN
  // is critical, as RFC 5280 4.2.1.6 requires.
  const std::string& first = names.front();
  const bool has_cn = first.size() <= 64 && !ip_octets(first);
  if (has_cn) add_name_entry(X509_get_subject_name(cert), "CN", first);
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, san.get(), has_cn ? 0 : 1, X509V3_ADD_DEFAULT) == 1,
        "cannot add the subject alternative names");

  add_conf_extension(cert, ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_conf_extension(cert, ca.cert.get(), NID_key_usage, "critical,digitalSignature");
  add_conf_extension(cert, ca.cert.get(), NID_ext_key_usage, "serverAuth");
  add_conf_extension(cert, ca.cert.get(), NID_subject_key_identifier, "hash");
  add_conf_extension(cert, ca.cert.get(), NID_authority_key_identifier, "keyid:always");
  sign(cert, *ca.key);
  return leaf;
}

std::string cert_to_pem(const X509& cert) {
  bio_ptr bio = memory_bio();
  check(PEM_write_bio_X509(bio.get(), &cert) == 1, "cannot write the certificate as PEM");
  return bio_text(bio.get());
}

std::string key_to_pem(const EVP_PKEY& key) {
  bio_ptr bio = memory_bio();
  check(PEM_write_bio_PKCS8PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "cannot write the key as PEM");
  return bio_text(bio.get());
}

x509_ptr cert_from_pem(std::string_view pem, std::string& error) {
  error_scope scope;
  bio_ptr bio = read_bio(pem);
  x509_ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!cert) error = "not a PEM certificate";
  return cert;
}

pkey_ptr key_from_pem(std::string_view pem, std::string& error) {
  error_scope scope;
  bio_ptr bio = read_bio(pem);
  pkey_ptr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) {
    error = pem.find("ENCRYPTED") != std::string_view::npos
                ? "an encrypted private key (no pass phrase is asked for)"
                : "not a PEM private key";
  }
  return key;
}

bool key_matches(const X509& cert, const EVP_PKEY& key) {
  error_scope scope;
  const EVP_PKEY* public_key = X509_get0_pubkey(&cert);
  return public_key != nullptr && EVP_PKEY_eq(public_key, &key) == 1;
}

sys_time not_after(const X509& cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(&cert), &tm) != 1) {
    ERR_clear_error();
    throw std::runtime_error("the certificate's notAfter is not a valid time");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::vector<std::string> permitted_dns_names(const X509& ca) {
  error_scope scope;
  std::vector<std::string> out;
  name_constraints_ptr nc(
      static_cast<NAME_CONSTRAINTS*>(X509_get_ext_d2i(&ca, NID_name_constraints, nullptr, nullptr)));
  if (!nc || !nc->permittedSubtrees) return out;
  for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); ++i) {
    const GENERAL_NAME* base = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
    if (base->type != GEN_DNS) continue;
    const ASN1_IA5STRING* text = base->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                     static_cast<std::size_t>(ASN1_STRING_length(text)));
  }
  return out;
}

std::string name_constraints_problem(const X509& ca) {
  error_scope scope;
  int critical = -1;
  name_constraints_ptr nc(
      static_cast<NAME_CONSTRAINTS*>(X509_get_ext_d2i(&ca, NID_name_constraints, &critical, nullptr)));
  if (!nc) return "it has no name constraints";
  // A client that does not know the extension may ignore it unless it is critical.
  if (critical != 1) return "its name constraints are not critical";
  bool localhost = false;
  bool loopback_v4 = false;
  bool loopback_v6 = false;
  bool other_ip = false;
  static constexpr unsigned char v4_range[] = {127, 0, 0, 0, 255, 0, 0, 0};
  static constexpr unsigned char v6_range[] = {0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
                                               0,   0,   0,   0,   1,   255, 255, 255, 255, 255, 255,
                                               255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
  const auto is = [](const ASN1_STRING* s, const unsigned char* bytes, std::size_t size) {
    return static_cast<std::size_t>(ASN1_STRING_length(s)) == size &&
           std::equal(bytes, bytes + size, ASN1_STRING_get0_data(s));
  };
  const int count = nc->permittedSubtrees ? sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) : 0;
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* base = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
    if (base->type == GEN_DNS) {
      const ASN1_IA5STRING* text = base->d.dNSName;
      const std::string_view name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                  static_cast<std::size_t>(ASN1_STRING_length(text)));
      if (name.empty()) return "its name constraints permit every DNS name";
      localhost = localhost || name == "localhost";
    } else if (base->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* range = base->d.iPAddress;
      if (is(range, v4_range, sizeof v4_range)) {
        loopback_v4 = true;
      } else if (is(range, v6_range, sizeof v6_range)) {
        loopback_v6 = true;
      } else {
        other_ip = true;
      }
    }
  }
  if (!localhost) return "it does not cover localhost";
  // Without an IP subtree every address is permitted; with a wider one, more than loopback.
  if (!loopback_v4 || !loopback_v6 || other_ip)
    return "its name constraints do not limit IP addresses to 127.0.0.0/8 and ::1/128";
  return {};
}

std::string sha256_fingerprint(const X509& cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  check(X509_digest(&cert, EVP_sha256(), digest, &size) == 1, "cannot hash the certificate");
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02X", digest[i]);
    if (i > 0) out += ':';
    out += hex;
  }
  return out;
}

std::string verify_chain(const X509& leaf, const std::vector<const X509*>& roots, std::string_view host,
                         sys_time now) {
  error_scope scope;
  std::string name(host);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  // An empty host would switch the host check off (X509_VERIFY_PARAM_set1_host clears the list).
  if (name.empty()) return "no host name to verify";

  store_ptr store(X509_STORE_new());
  store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!store || !ctx) return "out of memory";
  for (const X509* root : roots) {
    // X509_STORE_add_cert takes a reference (an atomic count), it does not change the certificate.
    if (X509_STORE_add_cert(store.get(), const_cast<X509*>(root)) != 1) return "cannot add a trusted root";
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), const_cast<X509*>(&leaf), nullptr) != 1) {
    return "cannot start the verification";
  }
  // What libssl sets for a TLS client checking a server: purpose and trust "ssl_server".
  if (X509_STORE_CTX_set_default(ctx.get(), "ssl_server") != 1) return "cannot set the TLS server purpose";
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // RFC 5280 rules as browsers apply them: CA basicConstraints critical, key ids present, and so on.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(now));
  const bool host_set = ip_octets(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
                                        : X509_VERIFY_PARAM_set1_host(param, name.data(), name.size()) == 1;
  if (!host_set) return "not a host name: " + name;

  if (X509_verify_cert(ctx.get()) == 1) return "";
  const int code = X509_STORE_CTX_get_error(ctx.get());
  if (code == X509_V_OK) return "verification failed";
  return std::string(X509_verify_cert_error_string(code)) + " (depth " +
         std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) + ")";
}

}  // namespace cproxy::tls
