// client_context: the client side of TLS, for the control plane's own requests (the hub): TLS 1.2 and
// later, the peer verified against the system trust store, the name checked (SNI and host name, or the
// IP address of an IP-literal URL), ALPN http/1.1. A session from here runs over a tls_stream.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "connect/tls/server_context.hpp"

namespace cproxy::tls {

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;

// A client context trusting OpenSSL's default verify paths: the system store, or the file and folder
// SSL_CERT_FILE and SSL_CERT_DIR name (OpenSSL reads them; tests trust their own CA that way). Made per
// use by callers that want a CA installed while the process runs to count. Null with `error` set when
// OpenSSL refuses.
ssl_ctx_ptr make_client_context(std::string& error);

// A session that will verify `host`: a DNS name (sent as SNI, checked against the certificate's names)
// or an IP literal without brackets (checked against its IP addresses; no SNI, as RFC 6066 asks). Null
// with `error` set when OpenSSL refuses.
ssl_ptr new_client_session(SSL_CTX& ctx, const std::string& host, std::string& error);

}  // namespace cproxy::tls
