// tls_setup: what `start --https` prepares before the data path serves TLS: the CA (loaded or made),
// certs/server.crt for the names known at start, or the --cert/--key pair; the server_context the
// workers share; and the certificate and trust lines of the start block.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connect/config/proxy_options.hpp"
#include "connect/config/settings.hpp"
#include "connect/tls/server_context.hpp"

namespace cproxy::control {

struct tls_setup {
  std::shared_ptr<tls::server_context> context;
  std::string tls_line;                 // after "  TLS:  " in the start block
  std::vector<std::string> cert_lines;  // "  [ok] Generated local CA", ...
  std::string new_ca_warning;           // a CA made again, which must be trusted again ("" when not)
  tls::x509_ptr ca;                     // null with a --cert/--key pair
};

// Returns "" with `out` filled, or the error for exit 1 ("--key ./k.pem: not a PEM private key").
std::string prepare_tls(const settings& config, const proxy_options& options,
                        const std::vector<std::string>& route_names, tls_setup& out);

// The trust lines of the start block: with --trust, the stores' outcome; else whether the CA is
// trusted. Empty with a --cert/--key pair.
std::vector<std::string> trust_lines(const settings& config, const proxy_options& options,
                                     const tls_setup& setup);

}  // namespace cproxy::control
