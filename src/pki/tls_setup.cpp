// Implementation of connect/pki/tls_setup.hpp.
#include "connect/pki/tls_setup.hpp"

#include "connect/core/log.hpp"
#include "connect/pki/cert_store.hpp"
#include "connect/pki/trust_store.hpp"
#include "connect/route/table.hpp"

namespace cproxy::control {

std::string prepare_tls(const settings& config, const proxy_options& options,
                        const std::vector<std::string>& route_names, tls_setup& out) {
  if (options.cert || options.key) {
    if (!options.cert || !options.key) return "--cert and --key go together: give both";
    tls::key_pair pair;
    std::string error;
    if (!load_custom_pair(*options.cert, *options.key, pair, error)) return error;
    out.tls_line = "using " + *options.cert;
    out.cert_lines.push_back("  [ok] Using certificate " + *options.cert);
    try {
      out.context = std::make_shared<tls::server_context>(tls::server_identity{std::move(pair), nullptr, {}});
    } catch (const std::exception& e) {
      return "--cert " + *options.cert + ": " + e.what();
    }
    return {};
  }

  // The dev domains as the route table normalises them; localhost is always in the CA.
  std::vector<std::string> domains;
  const route::table normalised({}, config.domains);
  for (const std::string& d : normalised.dev_domains())
    if (d != "localhost") domains.push_back(d);

  out.tls_line = "auto-generating certificates...";
  local_ca ca;
  std::string error;
  if (!ensure_ca(config.home, domains, ca, error)) return "certificates: " + error;
  if (!ca.generated) {
    out.cert_lines.push_back("  [ok] Using local CA");
  } else if (ca.regenerated_because.empty()) {
    out.cert_lines.push_back("  [ok] Generated local CA");
  } else {
    out.new_ca_warning = "[!] Made a new local CA (the old one: " + ca.regenerated_because +
                         "); trust it again — run: connect proxy trust";
    out.cert_lines.push_back("  [ok] Generated local CA");
    out.cert_lines.push_back("  " + out.new_ca_warning);
    log::warn(out.new_ca_warning);
  }
  std::vector<std::string> names{"localhost", "127.0.0.1", "::1"};
  for (const std::string& r : route_names) names.push_back(r + ".localhost");
  // The leaf served without SNI, and for the names known at start, is the one in server.crt.
  tls::key_pair leaf;
  if (!write_server_cert(config.home, ca.pair, names, leaf, error)) return "certificates: " + error;
  out.cert_lines.push_back("  [ok] Generated server certificate");
  out.ca.reset(X509_dup(ca.pair.cert.get()));
  try {
    out.context = std::make_shared<tls::server_context>(tls::server_identity{
        std::move(leaf), std::make_shared<const tls::key_pair>(std::move(ca.pair)), std::move(domains)});
  } catch (const std::exception& e) {
    return std::string("certificates: ") + e.what();
  }
  return {};
}

std::vector<std::string> trust_lines(const settings& config, const proxy_options& options,
                                     const tls_setup& setup) {
  if (!setup.ca) return {};
  if (options.trust) {
    std::vector<std::string> lines{"  [!] Adding CA to system trust store..."};
    for (std::string& l : install_ca_lines(config.home)) lines.push_back(std::move(l));
    return lines;
  }
  if (ca_is_trusted(*setup.ca)) return {"  [ok] CA trusted — no browser warnings"};
  return {"  [!] CA not trusted yet — run: connect proxy trust"};
}

}  // namespace cproxy::control
