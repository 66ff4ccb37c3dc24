// Implementation of connect/tls/server_context.hpp. The ClientHello callback picks each handshake's
// certificate: the default leaf when it covers the SNI name, else a cached minted leaf, else it pauses
// the handshake (SSL_CLIENT_HELLO_RETRY) while the minting thread makes one.
#include "connect/tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "connect/core/log.hpp"

namespace cproxy::tls {

struct server_context::state {
  struct cached {
    std::shared_ptr<const key_pair> leaf;
    sys_time renew_at;
  };

  SSL_CTX* ctx = nullptr;
  server_identity identity;

  mutable std::mutex mu;
  std::condition_variable wake;
  std::unordered_map<std::string, cached> leaves;
  std::unordered_map<std::string, std::vector<std::function<void()>>> minting;  // name -> who waits
  std::deque<std::string> queue;
  bool stopping = false;
  std::thread minter;

  std::shared_ptr<const key_pair> fresh_leaf(const std::string& name) const;
  void mint_loop();
};

namespace {

// Minted leaves kept at most, and names waiting to be minted: a client inventing names cannot grow
// either without bound (past the queue's limit a handshake for a new name fails at once).
constexpr std::size_t max_cached_leaves = 4096;
constexpr std::size_t max_queued_names = 256;

int pending_name_index() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); });
  return index;
}

std::runtime_error openssl_failure(const std::string& what) {
  char text[256] = "unknown error";
  if (const unsigned long e = ERR_get_error()) ERR_error_string_n(e, text, sizeof text);
  ERR_clear_error();
  return std::runtime_error(what + ": " + text);
}

// The host_name entry of the server_name extension (RFC 6066 3), lower-cased; "" without one.
std::string client_hello_sni(SSL* ssl) {
  const unsigned char* p = nullptr;
  std::size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5) return {};
  const std::size_t list_len = (std::size_t{p[0]} << 8) | p[1];
  if (list_len + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name) return {};
  const std::size_t name_len = (std::size_t{p[3]} << 8) | p[4];
  if (name_len == 0 || name_len + 5 > len) return {};
  std::string name(reinterpret_cast<const char*>(p + 5), name_len);
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return name;
}

// A DNS name worth a certificate: labels of 1-63 letters, digits and hyphens, not starting or ending
// with a hyphen, at most 253 bytes in all.
bool plausible_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (std::size_t start = 0; start <= name.size();) {
    const std::size_t end = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    start = end + 1;
  }
  return true;
}

bool under(std::string_view name, std::string_view domain) {
  return name == domain || (name.size() > domain.size() && name.ends_with(domain) &&
                            name[name.size() - domain.size() - 1] == '.');
}

int on_client_hello(SSL* ssl, int* alert, void* arg) {
  (void)alert;
  auto* st = static_cast<server_context::state*>(arg);
  if (!st->identity.ca) return SSL_CLIENT_HELLO_SUCCESS;  // a fixed pair: the context's certificate
  const std::string name = client_hello_sni(ssl);
  if (name.empty() || !plausible_dns_name(name)) return SSL_CLIENT_HELLO_SUCCESS;
  if (X509_check_host(st->identity.default_leaf.cert.get(), name.data(), name.size(), 0, nullptr) == 1)
    return SSL_CLIENT_HELLO_SUCCESS;
  bool ours = under(name, "localhost");
  for (const std::string& d : st->identity.dev_domains) ours = ours || under(name, d);
  if (!ours) return SSL_CLIENT_HELLO_SUCCESS;  // not ours to name: the default leaf, which will not verify
  if (const std::shared_ptr<const key_pair> leaf = st->fresh_leaf(name)) {
    if (SSL_use_cert_and_key(ssl, leaf->cert.get(), leaf->key.get(), nullptr, 1) != 1) {
      ERR_clear_error();
      return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  auto* pending = static_cast<std::string*>(SSL_get_ex_data(ssl, pending_name_index()));
  if (!pending) {
    pending = new std::string;
    SSL_set_ex_data(ssl, pending_name_index(), pending);
  }
  *pending = name;
  return SSL_CLIENT_HELLO_RETRY;
}

int on_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
            unsigned int in_len, void*) {
  // The server's order wins: h2 when the client offers it, else http/1.1.
  static const unsigned char protocols[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, protocols, sizeof protocols, in, in_len) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // a client offering neither gets no ALPN and speaks HTTP/1.1 or gives up
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<const key_pair> server_context::state::fresh_leaf(const std::string& name) const {
  const std::lock_guard lock(mu);
  const auto it = leaves.find(name);
  if (it == leaves.end() || identity.now() >= it->second.renew_at) return nullptr;
  return it->second.leaf;
}

void server_context::state::mint_loop() {
  std::unique_lock lock(mu);
  for (;;) {
    wake.wait(lock, [this] { return stopping || !queue.empty(); });
    if (stopping) {
      // Handshakes still waiting retry without a leaf and fail: none stays suspended.
      std::vector<std::function<void()>> left;
      for (auto& [name, waiters] : minting)
        for (auto& done : waiters) left.push_back(std::move(done));
      minting.clear();
      queue.clear();
      lock.unlock();
      for (auto& done : left) done();
      return;
    }
    const std::string name = queue.front();
    queue.pop_front();
    lock.unlock();
    std::shared_ptr<const key_pair> leaf;
    try {
      leaf = std::make_shared<const key_pair>(mint_leaf(*identity.ca, {name}, identity.now()));
    } catch (const std::exception& e) {
      log::error("TLS: could not mint a certificate for ", name, ": ", e.what());
    }
    lock.lock();
    if (leaf) {
      if (leaves.size() >= max_cached_leaves) leaves.clear();
      leaves[name] = cached{leaf, not_after(*leaf->cert) - renew_before};
      log::info("TLS: minted a certificate for ", name);
    }
    // Without a leaf the retried handshake asks again; the failure was logged, and a second failure
    // ends that handshake (see tls_stream::handshake).
    std::vector<std::function<void()>> waiters = std::move(minting[name]);
    minting.erase(name);
    lock.unlock();
    for (auto& done : waiters) done();
    lock.lock();
  }
}

server_context::server_context(server_identity identity) : state_(std::make_unique<state>()) {
  state& st = *state_;
  st.identity = std::move(identity);
  st.ctx = SSL_CTX_new(TLS_server_method());
  if (!st.ctx) throw openssl_failure("SSL_CTX_new");
  SSL_CTX* ctx = st.ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // IGNORE_UNEXPECTED_EOF: a client that closes without close_notify (most do) ends the stream
  // quietly instead of as an error.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // TLS 1.2: forward-secret AEAD suites only (ECDSA for our leaves, RSA for a custom pair).
  if (SSL_CTX_set_cipher_list(
          ctx,
          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:"
          "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384") != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1)
    throw openssl_failure("TLS settings");
  // Idle keep-alive connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static const unsigned char session_context[] = "connect-proxy";
  SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
  const key_pair& leaf = st.identity.default_leaf;
  if (!leaf.cert || !leaf.key || SSL_CTX_use_certificate(ctx, leaf.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, leaf.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    throw openssl_failure("the server certificate");
  SSL_CTX_set_client_hello_cb(ctx, on_client_hello, &st);
  SSL_CTX_set_app_data(ctx, this);  // tls_stream finds mint_async() through its session's context
  (void)pending_name_index();       // made once, before any worker thread races to make it
  if (st.identity.ca) st.minter = std::thread([&st] { st.mint_loop(); });
}

server_context::~server_context() {
  if (state_->minter.joinable()) {
    {
      const std::lock_guard lock(state_->mu);
      state_->stopping = true;
    }
    state_->wake.notify_all();
    state_->minter.join();
  }
  SSL_CTX_free(state_->ctx);
}

ssl_ptr server_context::new_session() {
  ssl_ptr ssl(SSL_new(state_->ctx));
  if (!ssl) ERR_clear_error();
  return ssl;
}

std::string_view server_context::pending_name(SSL* ssl) noexcept {
  const auto* pending = static_cast<const std::string*>(SSL_get_ex_data(ssl, pending_name_index()));
  return pending ? std::string_view(*pending) : std::string_view{};
}

void server_context::mint_async(const std::string& name, std::function<void()> done) {
  state& st = *state_;
  std::unique_lock lock(st.mu);
  if (!st.minter.joinable() || st.stopping) {
    lock.unlock();
    done();
    return;
  }
  const auto cached = st.leaves.find(name);
  if (cached != st.leaves.end() && st.identity.now() < cached->second.renew_at) {
    lock.unlock();
    done();  // minted since the handshake asked
    return;
  }
  if (st.queue.size() >= max_queued_names && !st.minting.contains(name)) {
    lock.unlock();
    done();  // the retried handshake finds no leaf and fails
    return;
  }
  auto [it, first] = st.minting.try_emplace(name);
  it->second.push_back(std::move(done));
  if (first) {
    st.queue.push_back(name);
    lock.unlock();
    st.wake.notify_one();
  }
}

}  // namespace cproxy::tls
