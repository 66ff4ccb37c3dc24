// Fuzz target: the first bytes on an HTTPS port. tls::opens_tls_handshake looks at one byte only, so
// this target follows both branches with the rest: a handshake record goes to a server session of a
// server_context (memory BIOs, no socket), whose ClientHello callback reads the SNI name and picks or
// asks for a leaf; anything else is a plain request head, as serve_requests reads it.
// Invariants: a handshake that pauses for a leaf names a plausible lower-case DNS name under localhost
// or the dev domain "test" (a client cannot make the proxy mint for any other name); nothing crashes
// or leaks whatever the ClientHello holds.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "connect/http/head.hpp"
#include "connect/tls/certificate.hpp"
#include "connect/tls/server_context.hpp"
#include "fuzz_check.hpp"

namespace tls = cproxy::tls;

namespace {

// One context for the whole run, as one proxy serves every connection from one (minting a CA and a leaf
// per input would measure key generation, not parsing). Never destroyed: its minting thread lives on.
tls::server_context& context() {
  static tls::server_context* const ctx = [] {
    const tls::sys_time now = std::chrono::system_clock::now();
    auto ca = std::make_shared<const tls::key_pair>(tls::make_ca({"test"}, now));
    return new tls::server_context(
        tls::server_identity{tls::mint_leaf(*ca, {"localhost", "127.0.0.1", "::1"}, now), ca, {"test"}, [] {
                               return std::chrono::system_clock::now();
                             }});
  }();
  return *ctx;
}

bool under(std::string_view name, std::string_view domain) {
  return name == domain || (name.size() > domain.size() && name.ends_with(domain) &&
                            name[name.size() - domain.size() - 1] == '.');
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)context();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!tls::opens_tls_handshake(data[0])) {
    cproxy::http::request_head head;
    const cproxy::http::parse_result r = cproxy::http::parse_request(bytes, head);
    FUZZ_CHECK(r.consumed <= size);
    return 0;
  }
  FUZZ_CHECK(data[0] == 0x16);

  tls::ssl_ptr session = context().new_session();
  FUZZ_CHECK(session != nullptr);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  FUZZ_CHECK(in && out);
  BIO_set_mem_eof_return(in, -1);  // no more bytes yet, not the end of the stream
  SSL_set_bio(session.get(), in, out);
  SSL_set_accept_state(session.get());
  FUZZ_CHECK(BIO_write(in, data, static_cast<int>(size)) == static_cast<int>(size));
  const int rc = SSL_do_handshake(session.get());
  if (rc != 1 && SSL_get_error(session.get(), rc) == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
    const std::string_view name = tls::server_context::pending_name(session.get());
    FUZZ_CHECK(!name.empty() && name.size() <= 253);
    for (const char c : name)
      FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    FUZZ_CHECK(under(name, "localhost") || under(name, "test"));
    // A second try without a leaf pauses again: the callback is asked once more, not skipped.
    const int again = SSL_do_handshake(session.get());
    FUZZ_CHECK(again != 1 && SSL_get_error(session.get(), again) == SSL_ERROR_WANT_CLIENT_HELLO_CB);
  }
  ERR_clear_error();
  return 0;
}
