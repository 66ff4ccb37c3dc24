// Unit tests for connect/tls/server_context.hpp without sockets: a client and a server SSL joined by
// memory BIOs in this thread. Which leaf each SNI name gets (the start-up leaf, a minted one, the
// start-up leaf for names that are not ours), that minting pauses the handshake and the cache then
// answers at once, and that a leaf near its end is minted again (the clock is the identity's).
#include "connect/tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "support/unit_test.hpp"

namespace {

namespace tls = cproxy::tls;
using namespace std::chrono_literals;

const tls::sys_time t0 = std::chrono::system_clock::now();

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};

// A server_context whose clock the test moves, with the CA's dev domain "test".
struct minting_server {
  std::atomic<long> hours_later{0};
  std::shared_ptr<const tls::key_pair> ca = std::make_shared<const tls::key_pair>(tls::make_ca({"test"}, t0));
  tls::server_context context{tls::server_identity{
      tls::mint_leaf(*ca, {"localhost", "127.0.0.1", "::1", "api.localhost"}, t0), ca, {"test"}, [this] {
        return t0 + std::chrono::hours(hours_later.load());
      }}};
};

struct handshake_result {
  bool completed = false;
  bool paused_for_mint = false;  // the handshake waited for the minting thread
  tls::x509_ptr leaf;            // what the server sent
};

// Moves what `from` wrote into `to`'s input.
void carry(BIO* from, BIO* to) {
  char buf[16 * 1024];
  for (int n; (n = BIO_read(from, buf, sizeof buf)) > 0;) BIO_write(to, buf, n);
}

handshake_result handshake(tls::server_context& context, const std::string& sni) {
  handshake_result out;
  std::unique_ptr<SSL_CTX, ssl_ctx_free> client_ctx(SSL_CTX_new(TLS_client_method()));
  tls::ssl_ptr client(SSL_new(client_ctx.get()));
  tls::ssl_ptr server = context.new_session();
  BOOST_TEST_REQUIRE(client.get() != nullptr);
  BOOST_TEST_REQUIRE(server.get() != nullptr);
  // SSL_set_tlsext_host_name is a macro with a C cast: call what it expands to.
  if (!sni.empty())
    SSL_ctrl(client.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(sni.c_str()));
  BIO* client_in = BIO_new(BIO_s_mem());
  BIO* client_out = BIO_new(BIO_s_mem());
  BIO* server_in = BIO_new(BIO_s_mem());
  BIO* server_out = BIO_new(BIO_s_mem());
  for (BIO* b : {client_in, server_in}) BIO_set_mem_eof_return(b, -1);
  SSL_set_bio(client.get(), client_in, client_out);
  SSL_set_bio(server.get(), server_in, server_out);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool client_done = false;
  bool server_done = false;
  for (int step = 0; step < 50 && !(client_done && server_done); ++step) {
    client_done = client_done || SSL_do_handshake(client.get()) == 1;
    carry(client_out, server_in);
    const int rc = SSL_do_handshake(server.get());
    server_done = server_done || rc == 1;
    if (rc != 1 && SSL_get_error(server.get(), rc) == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
      out.paused_for_mint = true;
      std::promise<void> minted;
      context.mint_async(std::string(tls::server_context::pending_name(server.get())),
                         [&minted] { minted.set_value(); });
      BOOST_TEST_REQUIRE((minted.get_future().wait_for(30s) == std::future_status::ready),
                         "no leaf within 30 s");
      continue;
    }
    carry(server_out, client_in);
  }
  ERR_clear_error();
  out.completed = client_done && server_done;
  if (X509* peer = SSL_get1_peer_certificate(client.get())) out.leaf.reset(peer);
  return out;
}

std::string san_of(const X509& cert) {
  std::string names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type != GEN_DNS) continue;
    if (!names.empty()) names += ",";
    names.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                 static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
  }
  GENERAL_NAMES_free(sans);
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_server_context)

BOOST_AUTO_TEST_CASE(a_new_name_waits_for_its_leaf_once_then_the_cache_answers) {
  minting_server s;
  const handshake_result first = handshake(s.context, "web.localhost");
  BOOST_TEST(first.completed);
  BOOST_TEST(first.paused_for_mint);
  BOOST_TEST_REQUIRE(first.leaf.get() != nullptr);
  BOOST_TEST(san_of(*first.leaf) == "web.localhost");
  BOOST_TEST(tls::verify_chain(*first.leaf, {s.ca->cert.get()}, "web.localhost", t0) == "");

  const handshake_result again = handshake(s.context, "WEB.localhost");  // SNI is case-insensitive
  BOOST_TEST(again.completed);
  BOOST_TEST(!again.paused_for_mint, "a cached leaf is served without waiting");
  BOOST_REQUIRE(again.leaf.get() != nullptr);
  BOOST_TEST(tls::sha256_fingerprint(*again.leaf) == tls::sha256_fingerprint(*first.leaf));
}

BOOST_AUTO_TEST_CASE(names_the_start_up_leaf_covers_or_that_are_not_ours_get_it_without_minting) {
  minting_server s;
  const std::string start_up = "localhost,api.localhost";
  const std::vector<std::string> names{
      "localhost",   "api.localhost",      "",
      "example.com", "bad_name.localhost", std::string(64, 'a') + ".localhost",
      "-x.localhost"};
  for (const std::string& sni : names) {
    const handshake_result r = handshake(s.context, sni);
    BOOST_TEST(r.completed, "SNI '" << sni << "'");
    BOOST_TEST(!r.paused_for_mint, "SNI '" << sni << "'");
    BOOST_REQUIRE(r.leaf.get() != nullptr);
    BOOST_TEST(san_of(*r.leaf) == start_up, "SNI '" << sni << "'");
  }
}

BOOST_AUTO_TEST_CASE(a_dev_domain_name_gets_its_own_leaf) {
  minting_server s;
  const handshake_result r = handshake(s.context, "shop.test");
  BOOST_TEST(r.paused_for_mint);
  BOOST_REQUIRE(r.leaf.get() != nullptr);
  BOOST_TEST(san_of(*r.leaf) == "shop.test");
  BOOST_TEST(tls::verify_chain(*r.leaf, {s.ca->cert.get()}, "shop.test", t0) == "");
}

BOOST_AUTO_TEST_CASE(a_leaf_near_its_end_is_minted_again) {
  minting_server s;
  const handshake_result first = handshake(s.context, "web.localhost");
  BOOST_REQUIRE(first.leaf.get() != nullptr);
  const tls::sys_time end = tls::not_after(*first.leaf);

  // A month before its end (renew_before) it is still served as it is...
  s.hours_later = std::chrono::duration_cast<std::chrono::hours>(end - tls::renew_before - t0).count() - 2;
  const handshake_result before = handshake(s.context, "web.localhost");
  BOOST_TEST(!before.paused_for_mint);
  BOOST_REQUIRE(before.leaf.get() != nullptr);
  BOOST_TEST(tls::sha256_fingerprint(*before.leaf) == tls::sha256_fingerprint(*first.leaf));

  // ...and within that month it is replaced by a leaf that lives past the old one's end.
  s.hours_later += 4;
  const handshake_result renewed = handshake(s.context, "web.localhost");
  BOOST_TEST(renewed.paused_for_mint);
  BOOST_REQUIRE(renewed.leaf.get() != nullptr);
  BOOST_TEST(tls::sha256_fingerprint(*renewed.leaf) != tls::sha256_fingerprint(*first.leaf));
  BOOST_TEST((tls::not_after(*renewed.leaf) > end));
}

BOOST_AUTO_TEST_SUITE_END()
