// Unit tests for connect/tls/certificate.hpp: the fields of the CA and of minted leaves read back with
// OpenSSL's own decoders, chain verification (name constraints, host, time), PEM in and out, key
// matching, fingerprints, and an error queue left empty. Pure: no files, no sockets.
#include "connect/tls/certificate.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/unit_test.hpp"

namespace {

namespace tls = cproxy::tls;
using namespace std::chrono_literals;

// One CA for the suite: key generation is the slow part under ASan, and the CA is immutable.
const tls::sys_time t0 = std::chrono::system_clock::now();

const tls::key_pair& shared_ca() {
  static const tls::key_pair ca = tls::make_ca({"test"}, t0);
  return ca;
}

std::vector<const X509*> roots() {
  return {shared_ca().cert.get()};
}

std::string verify(const tls::key_pair& leaf, std::string_view host, tls::sys_time at = t0) {
  return tls::verify_chain(*leaf.cert, roots(), host, at);
}

// The OpenSSL error queue is empty: nothing left behind for the next user of this thread.
bool queue_empty() {
  return ERR_peek_error() == 0;
}

template <class T, void (*free_fn)(T*)>
struct decoded {
  int critical = -1;  // before p: p's initializer sets it
  T* p = nullptr;
  decoded(const X509& cert, int nid)
      : critical(-1), p(static_cast<T*>(X509_get_ext_d2i(&cert, nid, &critical, nullptr))) {}
  ~decoded() { free_fn(p); }
  decoded(const decoded&) = delete;
  decoded& operator=(const decoded&) = delete;
};

void free_basic_constraints(BASIC_CONSTRAINTS* p) {
  BASIC_CONSTRAINTS_free(p);
}
void free_name_constraints(NAME_CONSTRAINTS* p) {
  NAME_CONSTRAINTS_free(p);
}
void free_general_names(GENERAL_NAMES* p) {
  GENERAL_NAMES_free(p);
}
void free_eku(EXTENDED_KEY_USAGE* p) {
  EXTENDED_KEY_USAGE_free(p);
}

bool critical(const X509& cert, int nid) {
  const int index = X509_get_ext_by_NID(&cert, nid, -1);
  BOOST_TEST_REQUIRE(index >= 0, "no extension " << OBJ_nid2sn(nid));
  return X509_EXTENSION_get_critical(X509_get_ext(&cert, index)) == 1;
}

std::string hex(const unsigned char* data, int size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

// "DNS:name", "IP:127.0.0.1", "IP:::1"; name-constraint IP ranges as "IP/hex of address+mask".
std::string describe(const GENERAL_NAME& name, bool range = false) {
  if (name.type == GEN_DNS) {
    return "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name.d.dNSName)),
                                static_cast<std::size_t>(ASN1_STRING_length(name.d.dNSName)));
  }
  if (name.type == GEN_IPADD) {
    const unsigned char* octets = ASN1_STRING_get0_data(name.d.iPAddress);
    const int size = ASN1_STRING_length(name.d.iPAddress);
    if (range) return "IP/" + hex(octets, size);
    char text[INET6_ADDRSTRLEN] = {};
    if (size == 4) inet_ntop(AF_INET, octets, text, sizeof text);
    if (size == 16) inet_ntop(AF_INET6, octets, text, sizeof text);
    return "IP:" + std::string(text);
  }
  return "other:" + std::to_string(name.type);
}

std::vector<std::string> san(const X509& cert) {
  decoded<GENERAL_NAMES, free_general_names> names(cert, NID_subject_alt_name);
  std::vector<std::string> out;
  BOOST_TEST_REQUIRE(names.p != nullptr);
  for (int i = 0; i < sk_GENERAL_NAME_num(names.p); ++i)
    out.push_back(describe(*sk_GENERAL_NAME_value(names.p, i)));
  return out;
}

std::string name_field(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "(none)";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

std::time_t to_time(const ASN1_TIME* t) {
  std::tm tm{};
  BOOST_TEST_REQUIRE(ASN1_TIME_to_tm(t, &tm) == 1);
  return timegm(&tm);
}

std::time_t seconds(tls::sys_time t) {
  return std::chrono::system_clock::to_time_t(t);
}

std::string group_name(const EVP_PKEY& key) {
  char name[64] = {};
  std::size_t size = 0;
  if (EVP_PKEY_get_group_name(&key, name, sizeof name, &size) != 1) return "(none)";
  return name;
}

std::string octets(const ASN1_OCTET_STRING* s) {
  return s ? hex(ASN1_STRING_get0_data(s), ASN1_STRING_length(s)) : std::string("(none)");
}

// Each case starts with an empty error queue: the queue is per thread and the suite's other modules
// share this thread, so what they leave behind must not be blamed on this module.
struct empty_error_queue {
  empty_error_queue() { ERR_clear_error(); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tls_certificate, empty_error_queue)

// --- The CA -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ca_is_a_self_signed_p256_v3_certificate) {
  const tls::key_pair& ca = shared_ca();
  const X509& cert = *ca.cert;
  BOOST_TEST(X509_get_version(&cert) == X509_VERSION_3);
  BOOST_TEST(EVP_PKEY_get_base_id(ca.key.get()) == EVP_PKEY_EC);
  BOOST_TEST(group_name(*ca.key) == "prime256v1");
  BOOST_TEST(group_name(*X509_get0_pubkey(&cert)) == "prime256v1");
  BOOST_TEST(X509_get_signature_nid(&cert) == NID_ecdsa_with_SHA256);
  BOOST_TEST(X509_verify(const_cast<X509*>(&cert), ca.key.get()) == 1);
  BOOST_TEST(name_field(X509_get_subject_name(&cert), NID_commonName) == "Private Connect Local CA");
  BOOST_TEST(name_field(X509_get_subject_name(&cert), NID_organizationName) == "Private Connect");
  BOOST_TEST(X509_NAME_cmp(X509_get_subject_name(&cert), X509_get_issuer_name(&cert)) == 0);
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(ca_serial_is_random_positive_and_at_most_20_octets) {
  const tls::key_pair other = tls::make_ca({}, t0);
  const ASN1_INTEGER* a = X509_get0_serialNumber(shared_ca().cert.get());
  const ASN1_INTEGER* b = X509_get0_serialNumber(other.cert.get());
  BOOST_TEST(ASN1_STRING_type(a) == V_ASN1_INTEGER);  // V_ASN1_NEG_INTEGER when negative
  BOOST_TEST(ASN1_STRING_length(a) <= 16);
  BOOST_TEST(ASN1_STRING_length(a) >= 8);  // 128 random bits: shorter than 8 octets has odds 2^-64
  BOOST_TEST(ASN1_INTEGER_cmp(a, b) != 0);
}

BOOST_AUTO_TEST_CASE(ca_basic_constraints_critical_ca_true) {
  decoded<BASIC_CONSTRAINTS, free_basic_constraints> bc(*shared_ca().cert, NID_basic_constraints);
  BOOST_TEST_REQUIRE(bc.p != nullptr);
  BOOST_TEST(bc.p->ca != 0);
  BOOST_TEST(bc.critical == 1);
  BOOST_TEST(ASN1_INTEGER_get(bc.p->pathlen) == 0);
  BOOST_TEST(X509_check_ca(shared_ca().cert.get()) == 1);
}

BOOST_AUTO_TEST_CASE(ca_key_usage_is_exactly_cert_and_crl_signing_critical) {
  X509* cert = shared_ca().cert.get();
  BOOST_TEST(X509_get_key_usage(cert) == static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  BOOST_TEST(critical(*cert, NID_key_usage));
  BOOST_TEST(X509_get_ext_by_NID(cert, NID_ext_key_usage, -1) < 0);
}

BOOST_AUTO_TEST_CASE(ca_has_subject_and_authority_key_ids_that_agree) {
  X509* cert = shared_ca().cert.get();
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
  BOOST_TEST_REQUIRE(ski != nullptr);
  BOOST_TEST_REQUIRE(aki != nullptr);
  BOOST_TEST(ASN1_STRING_length(ski) == 20);  // SHA-1 of the public key, RFC 5280 4.2.1.2 method 1
  BOOST_TEST(octets(ski) == octets(aki));
  BOOST_TEST(!critical(*cert, NID_subject_key_identifier));
  BOOST_TEST(!critical(*cert, NID_authority_key_identifier));
}

BOOST_AUTO_TEST_CASE(ca_name_constraints_permit_localhost_dev_domains_and_loopback) {
  decoded<NAME_CONSTRAINTS, free_name_constraints> nc(*shared_ca().cert, NID_name_constraints);
  BOOST_TEST_REQUIRE(nc.p != nullptr);
  BOOST_TEST(nc.critical == 1);
  BOOST_TEST(nc.p->excludedSubtrees == nullptr);
  std::vector<std::string> permitted;
  for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc.p->permittedSubtrees); ++i) {
    const GENERAL_SUBTREE* subtree = sk_GENERAL_SUBTREE_value(nc.p->permittedSubtrees, i);
    BOOST_TEST(subtree->minimum == nullptr);
    BOOST_TEST(subtree->maximum == nullptr);
    permitted.push_back(describe(*subtree->base, true));
  }
  const std::vector<std::string> expected{
      "DNS:localhost", "DNS:test", "IP/7f000000ff000000",
      "IP/00000000000000000000000000000001ffffffffffffffffffffffffffffffff"};
  BOOST_TEST(permitted == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ca_lives_ten_years_from_an_hour_ago) {
  const X509* cert = shared_ca().cert.get();
  BOOST_TEST(to_time(X509_get0_notBefore(cert)) == seconds(t0 - 1h));
  const auto years = std::chrono::duration<double, std::ratio<31556952>>(tls::not_after(*cert) - t0).count();
  BOOST_TEST(years > 9.99);
  BOOST_TEST(years < 10.01);
  BOOST_TEST(seconds(tls::not_after(*cert)) == to_time(X509_get0_notAfter(cert)));
}

BOOST_AUTO_TEST_CASE(ca_without_dev_domains_permits_localhost_only) {
  const tls::key_pair ca = tls::make_ca({}, t0);
  BOOST_TEST(tls::permitted_dns_names(*ca.cert) == std::vector<std::string>{"localhost"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ca_dev_domains_are_listed_once_in_order) {
  const tls::key_pair ca = tls::make_ca({"test", "dev.internal", "test", "localhost"}, t0);
  const std::vector<std::string> expected{"localhost", "test", "dev.internal"};
  BOOST_TEST(tls::permitted_dns_names(*ca.cert) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ca_refuses_an_empty_dev_domain_which_would_permit_every_name) {
  BOOST_CHECK_THROW(tls::make_ca({"test", ""}, t0), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(permitted_dns_names_of_a_certificate_without_constraints_is_empty) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(tls::permitted_dns_names(*leaf.cert).empty());
  BOOST_TEST(queue_empty());
}

// The shared CA with its name constraints replaced by `value` (OpenSSL's configuration syntax; none
// when empty). Not signed again: name_constraints_problem reads the extension only.
tls::x509_ptr with_constraints(const std::string& value) {
  tls::x509_ptr cert(X509_dup(shared_ca().cert.get()));
  BOOST_TEST_REQUIRE(cert != nullptr);
  X509_EXTENSION_free(X509_delete_ext(cert.get(), X509_get_ext_by_NID(cert.get(), NID_name_constraints, -1)));
  if (!value.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_name_constraints, value.c_str());
    BOOST_TEST_REQUIRE(ext != nullptr, value);
    BOOST_TEST_REQUIRE(X509_add_ext(cert.get(), ext, -1) == 1);
    X509_EXTENSION_free(ext);
  }
  return cert;
}

const std::string loopback_ranges =
    "permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

BOOST_AUTO_TEST_CASE(name_constraints_problem_accepts_the_cas_make_ca_makes) {
  BOOST_TEST(tls::name_constraints_problem(*shared_ca().cert) == "");
  BOOST_TEST(tls::name_constraints_problem(*tls::make_ca({}, t0).cert) == "");
  BOOST_TEST(tls::name_constraints_problem(
                 *with_constraints("critical,permitted;DNS:localhost," + loopback_ranges)) == "");
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(name_constraints_problem_names_what_a_ca_lacks) {
  BOOST_TEST(tls::name_constraints_problem(*with_constraints("")) == "it has no name constraints");
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(tls::name_constraints_problem(*leaf.cert) == "it has no name constraints");
  BOOST_TEST(tls::name_constraints_problem(*with_constraints("permitted;DNS:localhost," + loopback_ranges)) ==
             "its name constraints are not critical");
  BOOST_TEST(tls::name_constraints_problem(*with_constraints(
                 "critical,permitted;DNS:test," + loopback_ranges)) == "it does not cover localhost");
  BOOST_TEST(tls::name_constraints_problem(*with_constraints("critical,excluded;DNS:example.com")) ==
             "it does not cover localhost");
  const std::string ip_open = "its name constraints do not limit IP addresses to 127.0.0.0/8 and ::1/128";
  BOOST_TEST(tls::name_constraints_problem(*with_constraints("critical,permitted;DNS:localhost")) == ip_open);
  BOOST_TEST(tls::name_constraints_problem(*with_constraints(
                 "critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0")) == ip_open);
  BOOST_TEST(
      tls::name_constraints_problem(*with_constraints("critical,permitted;DNS:localhost," + loopback_ranges +
                                                      ",permitted;IP:10.0.0.0/255.0.0.0")) == ip_open);
  BOOST_TEST(tls::name_constraints_problem(
                 *with_constraints("critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/128.0.0.0,"
                                   "permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) == ip_open);
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(name_constraints_problem_refuses_an_empty_dns_subtree_which_permits_every_name) {
  tls::x509_ptr cert = with_constraints("");
  NAME_CONSTRAINTS* nc = NAME_CONSTRAINTS_new();
  nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
  const auto add = [nc](int type, const std::vector<unsigned char>& bytes) {
    GENERAL_SUBTREE* subtree = GENERAL_SUBTREE_new();
    ASN1_STRING* text = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);
    ASN1_STRING_set(text, bytes.data(), static_cast<int>(bytes.size()));
    GENERAL_NAME_set0_value(subtree->base, type, text);
    sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, subtree);
  };
  add(GEN_DNS, {'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'});
  add(GEN_DNS, {});
  add(GEN_IPADD, {127, 0, 0, 0, 255, 0, 0, 0});
  std::vector<unsigned char> v6(32, 0xff);
  std::fill(v6.begin(), v6.begin() + 16, 0);
  v6[15] = 1;
  add(GEN_IPADD, v6);
  BOOST_TEST_REQUIRE(X509_add1_ext_i2d(cert.get(), NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) == 1);
  NAME_CONSTRAINTS_free(nc);
  BOOST_TEST(tls::name_constraints_problem(*cert) == "its name constraints permit every DNS name");
  BOOST_TEST(queue_empty());
}

// --- Leaves -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(leaf_san_is_exactly_the_names_with_ips_as_ip_entries) {
  const tls::key_pair leaf =
      tls::mint_leaf(shared_ca(), {"localhost", "127.0.0.1", "::1", "api.localhost"}, t0);
  const std::vector<std::string> expected{"DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:api.localhost"};
  BOOST_TEST(san(*leaf.cert) == expected, boost::test_tools::per_element());
  BOOST_TEST(!critical(*leaf.cert, NID_subject_alt_name));
  BOOST_TEST(name_field(X509_get_subject_name(leaf.cert.get()), NID_commonName) == "localhost");
}

BOOST_AUTO_TEST_CASE(leaf_is_p256_signed_by_the_ca_with_sha256) {
  const tls::key_pair& ca = shared_ca();
  const tls::key_pair leaf = tls::mint_leaf(ca, {"web.test"}, t0);
  BOOST_TEST(X509_get_version(leaf.cert.get()) == X509_VERSION_3);
  BOOST_TEST(group_name(*leaf.key) == "prime256v1");
  BOOST_TEST(X509_get_signature_nid(leaf.cert.get()) == NID_ecdsa_with_SHA256);
  BOOST_TEST(X509_verify(leaf.cert.get(), ca.key.get()) == 1);
  BOOST_TEST(X509_NAME_cmp(X509_get_issuer_name(leaf.cert.get()), X509_get_subject_name(ca.cert.get())) == 0);
  BOOST_TEST(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf.cert.get()), X509_get0_serialNumber(ca.cert.get())) != 0);
  BOOST_TEST(tls::key_matches(*leaf.cert, *leaf.key));
}

BOOST_AUTO_TEST_CASE(leaf_key_usage_is_digital_signature_only_and_eku_server_auth) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(X509_get_key_usage(leaf.cert.get()) == static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  BOOST_TEST(critical(*leaf.cert, NID_key_usage));
  decoded<EXTENDED_KEY_USAGE, free_eku> eku(*leaf.cert, NID_ext_key_usage);
  BOOST_TEST_REQUIRE(eku.p != nullptr);
  BOOST_TEST_REQUIRE(sk_ASN1_OBJECT_num(eku.p) == 1);
  BOOST_TEST(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.p, 0)) == NID_server_auth);
  BOOST_TEST(X509_get_extended_key_usage(leaf.cert.get()) == static_cast<std::uint32_t>(XKU_SSL_SERVER));
}

BOOST_AUTO_TEST_CASE(leaf_is_not_a_ca_and_names_its_issuer_key) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  decoded<BASIC_CONSTRAINTS, free_basic_constraints> bc(*leaf.cert, NID_basic_constraints);
  BOOST_TEST_REQUIRE(bc.p != nullptr);
  BOOST_TEST(bc.p->ca == 0);
  BOOST_TEST(X509_check_ca(leaf.cert.get()) == 0);
  BOOST_TEST_REQUIRE(X509_get0_subject_key_id(leaf.cert.get()) != nullptr);
  BOOST_TEST(octets(X509_get0_authority_key_id(leaf.cert.get())) ==
             octets(X509_get0_subject_key_id(shared_ca().cert.get())));
  BOOST_TEST(octets(X509_get0_subject_key_id(leaf.cert.get())) !=
             octets(X509_get0_subject_key_id(shared_ca().cert.get())));
}

BOOST_AUTO_TEST_CASE(leaf_lives_under_398_days_from_an_hour_ago) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(to_time(X509_get0_notBefore(leaf.cert.get())) == seconds(t0 - 1h));
  BOOST_TEST(seconds(tls::not_after(*leaf.cert)) == seconds(t0 + tls::leaf_lifetime));
  BOOST_TEST((tls::not_after(*leaf.cert) - (t0 - 1h) < std::chrono::hours(24 * 398)));
}

BOOST_AUTO_TEST_CASE(ip_only_leaf_has_no_cn_and_a_critical_san) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"127.0.0.1"}, t0);
  BOOST_TEST(X509_NAME_entry_count(X509_get_subject_name(leaf.cert.get())) == 0);
  BOOST_TEST(critical(*leaf.cert, NID_subject_alt_name));
  BOOST_TEST(san(*leaf.cert) == std::vector<std::string>{"IP:127.0.0.1"}, boost::test_tools::per_element());
  BOOST_TEST(verify(leaf, "127.0.0.1") == "");
}

BOOST_AUTO_TEST_CASE(leaf_for_a_name_longer_than_a_cn_has_no_cn_and_verifies) {
  const std::string name = std::string(60, 'a') + ".web.test";  // 69 characters, over ub-common-name
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {name}, t0);
  BOOST_TEST(X509_NAME_entry_count(X509_get_subject_name(leaf.cert.get())) == 0);
  BOOST_TEST(verify(leaf, name) == "");
}

BOOST_AUTO_TEST_CASE(mint_leaf_refuses_no_names_and_a_ca_key_that_does_not_match) {
  BOOST_CHECK_THROW(tls::mint_leaf(shared_ca(), {}, t0), std::runtime_error);
  const tls::key_pair other = tls::make_ca({}, t0);
  tls::key_pair mixed;
  mixed.cert.reset(X509_dup(shared_ca().cert.get()));
  mixed.key.reset(EVP_PKEY_dup(other.key.get()));
  BOOST_CHECK_THROW(tls::mint_leaf(mixed, {"localhost"}, t0), std::runtime_error);
  BOOST_TEST(queue_empty());
}

// --- Chain verification ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(chain_verifies_for_every_permitted_name) {
  for (const std::string name : {"api.localhost", "localhost", "127.0.0.1", "::1", "web.test", "a.b.test"}) {
    const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {name}, t0);
    BOOST_TEST(verify(leaf, name) == "", name);
  }
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(server_leaf_verifies_for_each_of_its_names) {
  const tls::key_pair leaf =
      tls::mint_leaf(shared_ca(), {"localhost", "127.0.0.1", "::1", "api.localhost"}, t0);
  for (const std::string host : {"localhost", "127.0.0.1", "::1", "[::1]", "api.localhost"}) {
    BOOST_TEST(verify(leaf, host) == "", host);
  }
}

BOOST_AUTO_TEST_CASE(name_constraints_refuse_a_leaf_for_a_real_site) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"example.com"}, t0);
  BOOST_TEST(verify(leaf, "example.com") == "permitted subtree violation (depth 0)");
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(name_constraints_match_whole_labels_only) {
  // "localhost" permits localhost and every *.localhost, but not a name that merely ends in it.
  for (const std::string name : {"evillocalhost", "localhost.example.com", "attest", "test.com"}) {
    const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {name}, t0);
    BOOST_TEST(verify(leaf, name) == "permitted subtree violation (depth 0)", name);
  }
}

BOOST_AUTO_TEST_CASE(name_constraints_refuse_an_address_outside_loopback) {
  for (const std::string ip : {"10.0.0.1", "128.0.0.1", "::2", "fe80::1"}) {
    const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {ip}, t0);
    BOOST_TEST(verify(leaf, ip) == "permitted subtree violation (depth 0)", ip);
  }
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"127.255.0.9"}, t0);
  BOOST_TEST(verify(leaf, "127.255.0.9") == "");
}

BOOST_AUTO_TEST_CASE(name_constraints_refuse_a_leaf_with_one_foreign_name_among_good_ones) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost", "example.com"}, t0);
  BOOST_TEST(verify(leaf, "localhost") == "permitted subtree violation (depth 0)");
}

BOOST_AUTO_TEST_CASE(a_dev_domain_the_ca_does_not_list_is_refused) {
  const tls::key_pair ca = tls::make_ca({}, t0);
  const tls::key_pair leaf = tls::mint_leaf(ca, {"web.test"}, t0);
  BOOST_TEST(tls::verify_chain(*leaf.cert, {ca.cert.get()}, "web.test", t0) ==
             "permitted subtree violation (depth 0)");
}

BOOST_AUTO_TEST_CASE(a_different_host_fails) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"api.localhost", "127.0.0.1"}, t0);
  BOOST_TEST(verify(leaf, "web.localhost") == "hostname mismatch (depth 0)");
  BOOST_TEST(verify(leaf, "localhost") == "hostname mismatch (depth 0)");
  BOOST_TEST(verify(leaf, "::1") == "IP address mismatch (depth 0)");
  BOOST_TEST(verify(leaf, "") == "no host name to verify");
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(an_expired_leaf_fails) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(verify(leaf, "localhost", t0 + std::chrono::hours(24 * 396)) == "");
  BOOST_TEST(verify(leaf, "localhost", t0 + std::chrono::hours(24 * 400)) ==
             "certificate has expired (depth 0)");
}

BOOST_AUTO_TEST_CASE(a_leaf_from_the_future_fails) {
  const tls::key_pair ca = tls::make_ca({}, t0 - 24h);
  const tls::key_pair leaf = tls::mint_leaf(ca, {"localhost"}, t0);
  const auto check = [&](tls::sys_time at) {
    return tls::verify_chain(*leaf.cert, {ca.cert.get()}, "localhost", at);
  };
  BOOST_TEST(check(t0 - 30min) == "");
  BOOST_TEST(check(t0 - 2h) == "certificate is not yet valid (depth 0)");
}

BOOST_AUTO_TEST_CASE(an_expired_ca_fails) {
  const tls::key_pair ca = tls::make_ca({}, t0 - std::chrono::years(10));
  const tls::key_pair leaf = tls::mint_leaf(ca, {"localhost"}, t0);
  BOOST_TEST(tls::verify_chain(*leaf.cert, {ca.cert.get()}, "localhost", t0) ==
             "certificate has expired (depth 1)");
}

BOOST_AUTO_TEST_CASE(an_untrusted_ca_fails) {
  const tls::key_pair other = tls::make_ca({}, t0);
  const tls::key_pair leaf = tls::mint_leaf(other, {"localhost"}, t0);
  BOOST_TEST(verify(leaf, "localhost") == "unable to get local issuer certificate (depth 0)");
  BOOST_TEST(tls::verify_chain(*leaf.cert, {}, "localhost", t0) ==
             "unable to get local issuer certificate (depth 0)");
  BOOST_TEST(tls::verify_chain(*leaf.cert, {shared_ca().cert.get(), other.cert.get()}, "localhost", t0) ==
             "");
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(a_ca_is_not_a_server_certificate) {
  const tls::key_pair& ca = shared_ca();
  BOOST_TEST(tls::verify_chain(*ca.cert, roots(), "localhost", t0) != "");
}

// --- PEM ------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(certificate_pem_round_trips) {
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  const std::string pem = tls::cert_to_pem(*leaf.cert);
  BOOST_TEST(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
  BOOST_TEST(pem.ends_with("-----END CERTIFICATE-----\n"));
  std::string error;
  const tls::x509_ptr back = tls::cert_from_pem(pem, error);
  BOOST_TEST_REQUIRE(back != nullptr);
  BOOST_TEST(error == "");
  BOOST_TEST(X509_cmp(back.get(), leaf.cert.get()) == 0);
  BOOST_TEST(tls::cert_to_pem(*back) == pem);
}

BOOST_AUTO_TEST_CASE(key_pem_round_trips_as_unencrypted_pkcs8) {
  const tls::key_pair& ca = shared_ca();
  const std::string pem = tls::key_to_pem(*ca.key);
  BOOST_TEST(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  BOOST_TEST(pem.ends_with("-----END PRIVATE KEY-----\n"));
  std::string error;
  const tls::pkey_ptr back = tls::key_from_pem(pem, error);
  BOOST_TEST_REQUIRE(back != nullptr);
  BOOST_TEST(error == "");
  BOOST_TEST(EVP_PKEY_eq(back.get(), ca.key.get()) == 1);
  BOOST_TEST(tls::key_matches(*ca.cert, *back));
  // A CA read back from PEM mints leaves that verify against the original.
  tls::key_pair reread{tls::cert_from_pem(tls::cert_to_pem(*ca.cert), error), tls::key_from_pem(pem, error)};
  const tls::key_pair leaf = tls::mint_leaf(reread, {"api.localhost"}, t0);
  BOOST_TEST(verify(leaf, "api.localhost") == "");
}

BOOST_AUTO_TEST_CASE(garbage_pem_gives_a_short_reason_and_an_empty_error_queue) {
  const std::string cert_pem = tls::cert_to_pem(*shared_ca().cert);
  const std::string key_pem = tls::key_to_pem(*shared_ca().key);
  std::string error;
  for (const std::string& bad :
       {std::string(), std::string("hello"), key_pem, cert_pem.substr(0, cert_pem.size() / 2),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    error.clear();
    BOOST_TEST(tls::cert_from_pem(bad, error) == nullptr);
    BOOST_TEST(error == "not a PEM certificate");
    BOOST_TEST(queue_empty());
  }
  for (const std::string& bad :
       {std::string(), std::string("hello"), cert_pem, key_pem.substr(0, key_pem.size() / 2)}) {
    error.clear();
    BOOST_TEST(tls::key_from_pem(bad, error) == nullptr);
    BOOST_TEST(error == "not a PEM private key");
    BOOST_TEST(queue_empty());
  }
}

BOOST_AUTO_TEST_CASE(an_encrypted_key_is_refused_without_asking_for_a_pass_phrase) {
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  BOOST_TEST_REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio, shared_ca().key.get(), EVP_aes_128_cbc(), pass, 6,
                                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  std::string error;
  BOOST_TEST(tls::key_from_pem(pem, error) == nullptr);
  BOOST_TEST(error == "an encrypted private key (no pass phrase is asked for)");
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(errors_queued_before_a_failed_parse_are_kept) {
  ERR_raise(ERR_LIB_USER, 42);
  const unsigned long before = ERR_peek_last_error();
  std::string error;
  BOOST_TEST(tls::cert_from_pem("hello", error) == nullptr);
  BOOST_TEST(ERR_peek_last_error() == before);
  ERR_clear_error();
}

// --- Keys, fingerprints -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_matches_only_its_own_certificate) {
  const tls::key_pair& ca = shared_ca();
  const tls::key_pair leaf = tls::mint_leaf(ca, {"localhost"}, t0);
  BOOST_TEST(tls::key_matches(*ca.cert, *ca.key));
  BOOST_TEST(tls::key_matches(*leaf.cert, *leaf.key));
  BOOST_TEST(!tls::key_matches(*ca.cert, *leaf.key));
  BOOST_TEST(!tls::key_matches(*leaf.cert, *ca.key));
  const tls::pkey_ptr ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  BOOST_TEST_REQUIRE(ed25519 != nullptr);
  BOOST_TEST(!tls::key_matches(*leaf.cert, *ed25519));
  BOOST_TEST(queue_empty());
}

BOOST_AUTO_TEST_CASE(fingerprint_is_sha256_of_the_der_in_upper_case_hex_with_colons) {
  const X509* cert = shared_ca().cert.get();
  const std::string fingerprint = tls::sha256_fingerprint(*cert);
  BOOST_TEST(std::regex_match(fingerprint, std::regex("([0-9A-F]{2}:){31}[0-9A-F]{2}")), fingerprint);

  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  BOOST_TEST_REQUIRE(size > 0);
  unsigned char digest[32];
  BOOST_TEST_REQUIRE(
      EVP_Digest(der, static_cast<std::size_t>(size), digest, nullptr, EVP_sha256(), nullptr) == 1);
  OPENSSL_free(der);
  std::string expected;
  for (const unsigned char byte : digest) {
    char two[3];
    std::snprintf(two, sizeof two, "%02X", byte);
    if (!expected.empty()) expected += ':';
    expected += two;
  }
  BOOST_TEST(fingerprint == expected);
  const tls::key_pair leaf = tls::mint_leaf(shared_ca(), {"localhost"}, t0);
  BOOST_TEST(tls::sha256_fingerprint(*leaf.cert) != fingerprint);
}

BOOST_AUTO_TEST_SUITE_END()
