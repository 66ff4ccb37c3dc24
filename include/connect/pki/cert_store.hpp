// cert_store: the certificate files in the home folder's certs/ (folder 0700, keys 0600): the local CA
// (ca.crt, ca.key) and the start-up server certificate (server.crt, server.key), and the custom pair
// of --cert/--key. Makes what is missing or unusable with connect/tls/certificate.hpp.
#pragma once

#include <string>
#include <vector>

#include "connect/tls/certificate.hpp"

namespace cproxy::control {

std::string certs_folder(const std::string& home);
std::string ca_cert_path(const std::string& home);

// The CA, loaded or made now.
struct local_ca {
  tls::key_pair pair;
  bool generated = false;
  // Why a CA that existed was made again ("missing", "corrupt: ...", "expires ...", "it has no name
  // constraints" and the other texts of tls::name_constraints_problem, "does not cover the dev domain
  // test"); empty when it was reused or made for the first time. A new CA must be trusted again.
  std::string regenerated_because;
};

// Loads certs/ca.crt and ca.key, or makes a new CA when they are missing, unreadable, do not match,
// expire within tls::renew_before, lack the critical name constraints make_ca gives (localhost,
// 127.0.0.0/8, ::1/128), or do not permit one of `domains`. Returns false with `error` set
// when the files cannot be written.
bool ensure_ca(const std::string& home, const std::vector<std::string>& domains, local_ca& out,
               std::string& error);

// Writes certs/server.crt and server.key: a leaf of `ca` for each
// name of `names`, and sets `leaf` to it. Returns false with `error` set when the files cannot be
// written.
bool write_server_cert(const std::string& home, const tls::key_pair& ca,
                       const std::vector<std::string>& names, tls::key_pair& leaf, std::string& error);

// The --cert/--key pair: unreadable, not PEM, or a key that does not match the certificate gives an
// error naming the file and the problem ("--key ./key.pem: the key does not match --cert ./cert.pem").
bool load_custom_pair(const std::string& cert_path, const std::string& key_path, tls::key_pair& out,
                      std::string& error);

}  // namespace cproxy::control
