// Unit tests for connect/pki/cert_store.hpp's CA on disk (issue 10, A2): a CA found in certs/ is
// used only when it carries the contract's critical name constraints; any other is made again, and the
// reason names what was wrong. Real files in a temp PRIVATECONNECT_HOME.
#include "connect/pki/cert_store.hpp"

#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "connect/config/atomic_file.hpp"
#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

namespace tls = cproxy::tls;
using cproxy::test::temp_dir;

// A temp home as PRIVATECONNECT_HOME for the length of a case.
struct temp_home {
  temp_dir dir{"connect-certs"};
  std::optional<std::string> old;
  temp_home() {
    if (const char* value = std::getenv("PRIVATECONNECT_HOME")) old = value;
    ::setenv("PRIVATECONNECT_HOME", dir.path.c_str(), 1);
  }
  ~temp_home() {
    if (old) {
      ::setenv("PRIVATECONNECT_HOME", old->c_str(), 1);
    } else {
      ::unsetenv("PRIVATECONNECT_HOME");
    }
  }
  temp_home(const temp_home&) = delete;
  temp_home& operator=(const temp_home&) = delete;
  const std::string& path() const { return dir.path; }
};

// A self-signed CA like one another tool (or another user) might leave in certs/: P-256, CA:TRUE
// critical, key ids, and the name constraints `constraints` says in OpenSSL's configuration syntax
// (none when empty).
tls::key_pair foreign_ca(const std::string& constraints) {
  tls::key_pair ca;
  ca.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  BOOST_TEST_REQUIRE(ca.key != nullptr);
  ca.cert.reset(X509_new());
  X509* cert = ca.cert.get();
  BOOST_TEST_REQUIRE(X509_set_version(cert, X509_VERSION_3) == 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
  BOOST_TEST_REQUIRE(X509_set_pubkey(cert, ca.key.get()) == 1);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("Private Connect Local CA"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  const auto add = [cert](int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    BOOST_TEST_REQUIRE(ext != nullptr, value);
    BOOST_TEST_REQUIRE(X509_add_ext(cert, ext, -1) == 1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add(NID_key_usage, "critical,keyCertSign,cRLSign");
  add(NID_subject_key_identifier, "hash");
  add(NID_authority_key_identifier, "keyid:always");
  if (!constraints.empty()) add(NID_name_constraints, constraints);
  BOOST_TEST_REQUIRE(X509_sign(cert, ca.key.get(), EVP_sha256()) > 0);
  return ca;
}

void plant(const temp_home& home, const tls::key_pair& ca) {
  const std::string certs = cproxy::control::certs_folder(home.path());
  std::filesystem::create_directories(certs);
  BOOST_TEST_REQUIRE(
      cproxy::control::write_file_atomically(certs + "/ca.key", tls::key_to_pem(*ca.key), 0600) == "");
  BOOST_TEST_REQUIRE(
      cproxy::control::write_file_atomically(certs + "/ca.crt", tls::cert_to_pem(*ca.cert), 0644) == "");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::string loopback =
    "permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

// ensure_ca on a home holding `ca`: why it was made again ("" when it was used as it was).
std::string remade_because(const tls::key_pair& ca, const std::vector<std::string>& domains = {}) {
  temp_home home;
  plant(home, ca);
  const std::string planted = slurp(cproxy::control::ca_cert_path(home.path()));
  cproxy::control::local_ca out;
  std::string error;
  BOOST_TEST_REQUIRE(cproxy::control::ensure_ca(home.path(), domains, out, error), error);
  const std::string now = slurp(cproxy::control::ca_cert_path(home.path()));
  if (!out.generated) {
    BOOST_TEST(now == planted, "a CA used as it is stays on disk");
    return {};
  }
  BOOST_TEST(now != planted);
  BOOST_TEST(tls::name_constraints_problem(*out.pair.cert) == "", "the new CA is constrained");
  BOOST_TEST(!out.regenerated_because.empty(), "the output must say the CA must be trusted again");
  return out.regenerated_because;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cert_store)

BOOST_AUTO_TEST_CASE(a_ca_without_name_constraints_is_made_again) {
  // The reproduction of A2: with no dev domain configured the old check looked at nothing.
  BOOST_TEST(remade_because(foreign_ca("")) == "it has no name constraints");
  BOOST_TEST(remade_because(foreign_ca(""), {"test"}) == "it has no name constraints");
}

BOOST_AUTO_TEST_CASE(a_ca_with_constraints_that_are_not_critical_is_made_again) {
  BOOST_TEST(remade_because(foreign_ca("permitted;DNS:localhost," + loopback)) ==
             "its name constraints are not critical");
}

BOOST_AUTO_TEST_CASE(a_ca_that_leaves_ip_addresses_open_is_made_again) {
  const std::string why = "its name constraints do not limit IP addresses to 127.0.0.0/8 and ::1/128";
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:localhost")) == why);
  BOOST_TEST(
      remade_because(foreign_ca("critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0")) == why);
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:localhost," + loopback +
                                       ",permitted;IP:0.0.0.0/0.0.0.0")) == why);
}

BOOST_AUTO_TEST_CASE(a_ca_without_localhost_is_made_again) {
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:test," + loopback)) ==
             "it does not cover localhost");
}

BOOST_AUTO_TEST_CASE(a_ca_with_the_contract_constraints_is_used) {
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:localhost," + loopback)) == "");
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:localhost,permitted;DNS:test," + loopback),
                            {"test"}) == "");
  // The dev domain check is unchanged.
  BOOST_TEST(remade_because(foreign_ca("critical,permitted;DNS:localhost," + loopback), {"test"}) ==
             "it does not cover the dev domain test");
}

BOOST_AUTO_TEST_CASE(a_ca_this_store_made_is_used_again) {
  temp_home home;
  cproxy::control::local_ca first;
  std::string error;
  BOOST_TEST_REQUIRE(cproxy::control::ensure_ca(home.path(), {"test"}, first, error), error);
  BOOST_TEST(first.generated);
  BOOST_TEST(first.regenerated_because == "");
  cproxy::control::local_ca second;
  BOOST_TEST_REQUIRE(cproxy::control::ensure_ca(home.path(), {"test"}, second, error), error);
  BOOST_TEST(!second.generated);
  BOOST_TEST(tls::sha256_fingerprint(*second.pair.cert) == tls::sha256_fingerprint(*first.pair.cert));
}

BOOST_AUTO_TEST_SUITE_END()
