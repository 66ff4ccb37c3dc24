// server_context: what every TLS connection of a server shares: the OpenSSL SSL_CTX (TLS 1.2 and 1.3
// only, modern ciphers, ALPN h2 then http/1.1, session tickets, unexpected EOF tolerated) and where each
// handshake's certificate comes from: a fixed pair (--cert/--key), or leaves minted from the local CA
// for each SNI name under localhost or a dev domain, cached, and minted on a thread of their own so a
// handshake for a new name never stalls the other connections of its worker.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connect/tls/certificate.hpp"

namespace cproxy::tls {

struct ssl_free {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

// Where certificates come from.
struct server_identity {
  // Served to a handshake without SNI (https://127.0.0.1:PORT), for names outside the dev domains,
  // and to every handshake when there is no CA (a --cert/--key pair).
  key_pair default_leaf;
  // The local CA that mints a leaf per SNI name; null to serve default_leaf only.
  std::shared_ptr<const key_pair> ca;
  std::vector<std::string> dev_domains;  // besides localhost, lower case
  // The time leaves are minted and renewed by (tests move it forward to see a leaf renewed).
  std::function<sys_time()> now = [] { return std::chrono::system_clock::now(); };
};

// True when `first_byte` opens a TLS record carrying a handshake (a ClientHello): what tells a TLS
// client from plain HTTP on the same port.
inline bool opens_tls_handshake(unsigned char first_byte) noexcept {
  return first_byte == 0x16;
}

// Lifetime: outlives every connection that uses it (proxy::server destroys its workers first). Its
// destructor stops the minting thread; a handshake still waiting for a leaf is resumed and fails.
class server_context {
 public:
  // Throws std::runtime_error when OpenSSL refuses the settings or the certificate pair.
  explicit server_context(server_identity identity);
  ~server_context();
  server_context(const server_context&) = delete;
  server_context& operator=(const server_context&) = delete;

  // A new server-side session. Its handshake may pause with SSL_ERROR_WANT_CLIENT_HELLO_CB: the SNI
  // name (pending_name()) has no leaf yet; mint_async() makes one, then the handshake is retried.
  ssl_ptr new_session();
  static std::string_view pending_name(SSL* ssl) noexcept;
  // Makes the leaf for `name` on the minting thread and calls `done` there once it is cached (at
  // once, on this thread, if it is cached already). `done` must be cheap: it posts a resumption.
  void mint_async(const std::string& name, std::function<void()> done);

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace cproxy::tls
