// Implementation of connect/tls/client_context.hpp.
#include "connect/tls/client_context.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace cproxy::tls {
namespace {

// The OpenSSL error queue's last entry (or `fallback`), and the queue cleared: it is the thread's.
std::string openssl_reason(const char* fallback) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char text[256];
  ERR_error_string_n(e, text, sizeof text);
  return text;
}

bool is_ip_literal(const std::string& host) {
  unsigned char a[16];
  return ::inet_pton(AF_INET, host.c_str(), a) == 1 || ::inet_pton(AF_INET6, host.c_str(), a) == 1;
}

}  // namespace

ssl_ctx_ptr make_client_context(std::string& error) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    error = "cannot make a TLS context: " + openssl_reason("error");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    error = "cannot load the system trust store: " + openssl_reason("error");
    return nullptr;
  }
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx.get(), alpn, sizeof alpn);
  return ctx;
}

ssl_ptr new_client_session(SSL_CTX& ctx, const std::string& host, std::string& error) {
  ERR_clear_error();
  ssl_ptr ssl(SSL_new(&ctx));
  if (!ssl) {
    error = "cannot make a TLS session: " + openssl_reason("error");
    return nullptr;
  }
  bool set = true;
  if (is_ip_literal(host)) {
    set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) == 1;
  } else {
    // SSL_set_tlsext_host_name() is a macro with a C cast (-Wold-style-cast): its expansion, spelled out.
    const long sni = SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                              const_cast<char*>(host.c_str()));
    set = sni == 1 && X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl.get()), host.c_str(), host.size()) == 1;
  }
  if (!set) {
    error = "cannot set the name to verify: " + openssl_reason("error");
    return nullptr;
  }
  return ssl;
}

}  // namespace cproxy::tls
