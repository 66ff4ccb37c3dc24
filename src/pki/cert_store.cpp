// Implementation of connect/pki/cert_store.hpp: the certs/ folder and the --cert/--key pair.
#include "connect/pki/cert_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "connect/config/atomic_file.hpp"
#include "connect/config/config_file.hpp"

namespace cproxy::control {
namespace {

constexpr std::size_t max_pem_size = 1024 * 1024;

// Serialises the processes that make certificates in certs/: two starts at once would otherwise each
// write a CA and leave one's ca.crt beside the other's ca.key. Released on destruction (or exit).
class certs_lock {
 public:
  certs_lock(const std::string& home, std::string& error) {
    const std::string path = certs_folder(home) + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) error = "cannot lock " + path + ": " + std::strerror(errno);
  }
  ~certs_lock() {
    if (fd_ >= 0) ::close(fd_);
  }
  certs_lock(const certs_lock&) = delete;
  certs_lock& operator=(const certs_lock&) = delete;

 private:
  int fd_ = -1;
};

bool ensure_certs_folder(const std::string& home, std::string& error) {
  if (!ensure_home_folder(error)) return false;
  const std::string dir = certs_folder(home);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    error = "cannot create " + dir + ": " + std::strerror(errno);
    return false;
  }
  // The folder itself, never one a link points to: the keys go in it.
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st {};
    const bool link = ::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    error = "cannot use " + dir + ": " + (link ? std::string("it is a symbolic link") : std::strerror(err));
    return false;
  }
  ::fchmod(fd, 0700);
  ::close(fd);
  return true;
}

std::string date_of(tls::sys_time t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &tm);
  return text;
}

// Why the CA on disk cannot be used as it is; "" when it can (and then `out` holds it).
std::string check_existing_ca(const std::string& home, const std::vector<std::string>& domains,
                              tls::key_pair& out) {
  std::string cert_text;
  std::string key_text;
  const std::string dir = certs_folder(home);
  // Never through a link: the CA is what `trust` installs system-wide.
  if (read_small_file(dir + "/ca.crt", cert_text, max_pem_size, links::refuse) != 0)
    return "ca.crt is missing or unreadable";
  if (read_small_file(dir + "/ca.key", key_text, max_pem_size, links::refuse) != 0)
    return "ca.key is missing or unreadable";
  std::string why;
  tls::x509_ptr cert = tls::cert_from_pem(cert_text, why);
  if (!cert) return "ca.crt is corrupt (" + why + ")";
  tls::pkey_ptr key = tls::key_from_pem(key_text, why);
  if (!key) return "ca.key is corrupt (" + why + ")";
  if (!tls::key_matches(*cert, *key)) return "ca.key does not match ca.crt";
  // A key others can read is put right, not replaced: the CA's trust stays valid.
  if (const int fd = ::open((dir + "/ca.key").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC); fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) ::fchmod(fd, 0600);
    ::close(fd);
  }
  const tls::sys_time end = tls::not_after(*cert);
  if (end - tls::renew_before <= std::chrono::system_clock::now()) return "it expires on " + date_of(end);
  // Without them the CA could sign a leaf for any site, and `trust` would install it system-wide.
  if (std::string problem = tls::name_constraints_problem(*cert); !problem.empty()) return problem;
  const std::vector<std::string> permitted = tls::permitted_dns_names(*cert);
  for (const std::string& d : domains) {
    if (std::find(permitted.begin(), permitted.end(), d) == permitted.end())
      return "it does not cover the dev domain " + d;
  }
  out = tls::key_pair{std::move(cert), std::move(key)};
  return {};
}

}  // namespace

std::string certs_folder(const std::string& home) {
  return home + "/certs";
}
std::string ca_cert_path(const std::string& home) {
  return certs_folder(home) + "/ca.crt";
}

bool ensure_ca(const std::string& home, const std::vector<std::string>& domains, local_ca& out,
               std::string& error) {
  if (!ensure_certs_folder(home, error)) return false;
  const certs_lock lock(home, error);
  if (!error.empty()) return false;
  const bool existed = ::access((certs_folder(home) + "/ca.crt").c_str(), F_OK) == 0 ||
                       ::access((certs_folder(home) + "/ca.key").c_str(), F_OK) == 0;
  const std::string unusable = check_existing_ca(home, domains, out.pair);
  if (unusable.empty()) {
    out.generated = false;
    return true;
  }
  try {
    out.pair = tls::make_ca(domains, std::chrono::system_clock::now());
  } catch (const std::exception& e) {
    error = std::string("cannot make the local CA: ") + e.what();
    return false;
  }
  out.generated = true;
  out.regenerated_because = existed ? unusable : "";
  const std::string dir = certs_folder(home);
  // The key first: a certificate on disk always has its key.
  error = write_file_atomically(dir + "/ca.key", tls::key_to_pem(*out.pair.key), 0600);
  if (error.empty()) error = write_file_atomically(dir + "/ca.crt", tls::cert_to_pem(*out.pair.cert), 0644);
  return error.empty();
}

bool write_server_cert(const std::string& home, const tls::key_pair& ca,
                       const std::vector<std::string>& names, tls::key_pair& leaf, std::string& error) {
  if (!ensure_certs_folder(home, error)) return false;
  const certs_lock lock(home, error);  // server.crt and server.key from the same process
  if (!error.empty()) return false;
  try {
    leaf = tls::mint_leaf(ca, names, std::chrono::system_clock::now());
  } catch (const std::exception& e) {
    error = std::string("cannot make the server certificate: ") + e.what();
    return false;
  }
  const std::string dir = certs_folder(home);
  error = write_file_atomically(dir + "/server.key", tls::key_to_pem(*leaf.key), 0600);
  if (error.empty()) error = write_file_atomically(dir + "/server.crt", tls::cert_to_pem(*leaf.cert), 0644);
  return error.empty();
}

bool load_custom_pair(const std::string& cert_path, const std::string& key_path, tls::key_pair& out,
                      std::string& error) {
  std::string cert_text;
  std::string key_text;
  if (const int err = read_small_file(cert_path, cert_text, max_pem_size); err != 0) {
    error = "--cert " + cert_path + ": cannot read it (" + std::strerror(err) + ")";
    return false;
  }
  if (const int err = read_small_file(key_path, key_text, max_pem_size); err != 0) {
    error = "--key " + key_path + ": cannot read it (" + std::strerror(err) + ")";
    return false;
  }
  std::string why;
  tls::x509_ptr cert = tls::cert_from_pem(cert_text, why);
  if (!cert) {
    error = "--cert " + cert_path + ": " + why;
    return false;
  }
  tls::pkey_ptr key = tls::key_from_pem(key_text, why);
  if (!key) {
    error = "--key " + key_path + ": " + why;
    return false;
  }
  if (!tls::key_matches(*cert, *key)) {
    error = "--key " + key_path + ": the key does not match the certificate in --cert " + cert_path;
    return false;
  }
  out = tls::key_pair{std::move(cert), std::move(key)};
  return true;
}

}  // namespace cproxy::control
