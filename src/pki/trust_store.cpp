// Implementation of connect/pki/trust_store.hpp: the three actions and their printed blocks, and
// the helpers the stores share (running a tool with no shell, PEM bundles, paths shown with "~").
// The stores themselves are in trust_system.cpp and trust_nss.cpp.
#include "connect/pki/trust_store.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "connect/config/config_file.hpp"
#include "connect/config/settings.hpp"
#include "connect/core/log.hpp"
#include "connect/pki/cert_store.hpp"
#include "trust_detail.hpp"

extern char** environ;

namespace cproxy::control {
namespace trust {

std::string home_dir() {
  const char* h = std::getenv("HOME");
  std::string home = h ? h : "";
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  return home == "/" ? std::string() : home;
}

std::string shown_path(const std::string& path) {
  const std::string home = home_dir();
  if (!home.empty() && path.size() > home.size() && path.starts_with(home) && path[home.size()] == '/')
    return "~" + path.substr(home.size());
  return path;
}

std::string find_program(std::string_view name) {
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream parts(dirs);
  for (std::string dir; std::getline(parts, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + std::string(name);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

command_result run_command(const std::vector<std::string>& argv) {
  command_result r;
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.output = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  // posix_spawn rather than fork: safe in a process with threads (start --https --trust), and glibc
  // reports a failed exec as its return value.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawnattr_init(&attr);
  // The foreground proxy blocks SIGINT/SIGTERM in its threads; the tool must not inherit that.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    r.output = std::string(std::strerror(rc));
    log::warn("trust: cannot run ", shown, ": ", r.output);
    return r;
  }
  r.started = true;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      r.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  log::info("trust: ", shown, " -> exit ", r.exit_code, r.output.empty() ? "" : "\n", r.output);
  return r;
}

std::string command_failure(const std::string& program, const command_result& r) {
  if (!r.started) return "cannot run " + program + ": " + r.output;
  std::string first = r.output.substr(0, r.output.find('\n'));
  if (first.starts_with(program + ": ")) first.erase(0, program.size() + 2);
  return program + " exited with " + std::to_string(r.exit_code) + (first.empty() ? "" : ": " + first);
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

std::vector<tls::x509_ptr> certs_from_pem(std::string_view pem) {
  std::vector<tls::x509_ptr> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return out;
  // PEM_X509_INFO_read_bio, as X509_load_cert_crl_file does: it skips blocks that are not certificates.
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (infos) {
    for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
      X509_INFO* info = sk_X509_INFO_value(infos, i);
      if (info->x509) {
        out.emplace_back(info->x509);
        info->x509 = nullptr;  // ours now
      }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
  }
  ERR_clear_error();
  return out;
}

bool verifies_as_root(const X509& ca, const std::vector<tls::x509_ptr>& roots) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = false;
  if (store && ctx) {
    for (const auto& root : roots) X509_STORE_add_cert(store, root.get());
    // OpenSSL 3's verifier takes the target non-const; it does not change it.
    if (X509_STORE_CTX_init(ctx, store, const_cast<X509*>(&ca), nullptr) == 1)
      ok = X509_verify_cert(ctx) == 1;
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  ERR_clear_error();
  return ok;
}

}  // namespace trust

namespace {

using trust::store_line;

// The home folder as the contract shows it: ~/.privateconnect when it is the default, else in full.
std::string shown_home(const std::string& home) {
  const char* custom = std::getenv("PRIVATECONNECT_HOME");
  const std::string user_home = trust::home_dir();
  if ((!custom || !*custom) && !user_home.empty() && home == user_home + "/.privateconnect")
    return "~/.privateconnect";
  return home;
}

// The CA as files hold it: certificate, and the key when readable (null otherwise).
struct loaded_ca {
  tls::key_pair pair;
  std::string error;
};

loaded_ca load_ca(const std::string& home) {
  loaded_ca out;
  // The CA's files live in the home folder: read as they are, never through a link another user planted.
  constexpr std::size_t max_pem_bytes = std::size_t{1} << 20;
  std::string text;
  if (const int error = read_small_file(ca_cert_path(home), text, max_pem_bytes, links::refuse); error != 0) {
    out.error = error == ENOENT ? "missing" : error == ELOOP ? "it is a symbolic link" : std::strerror(error);
    return out;
  }
  out.pair.cert = tls::cert_from_pem(text, out.error);
  if (!out.pair.cert) return out;
  std::string key_text;
  std::string ignored;
  if (read_small_file(certs_folder(home) + "/ca.key", key_text, max_pem_bytes, links::refuse) == 0) {
    out.pair.key = tls::key_from_pem(key_text, ignored);
    if (out.pair.key && !tls::key_matches(*out.pair.cert, *out.pair.key)) out.pair.key.reset();
  }
  return out;
}

// The line printed when certutil is missing, with the package of the distribution found.
std::string no_certutil_line(std::string_view purpose) {
  std::string ignored;
  const auto dist = trust::detect_distribution(ignored);
  const std::string package = dist ? dist->nss_package : "libnss3-tools";
  return "  [!] certutil not found — install " + package + " to " + std::string(purpose) +
         " Chrome and Firefox";
}

bool any_nss_database(const std::vector<trust::nss_db>& dbs) {
  for (const auto& db : dbs)
    if (db.exists) return true;
  return false;
}

std::vector<store_line> add_everywhere(const std::string& ca_path, const X509& ca) {
  std::vector<store_line> lines;
  lines.push_back(trust::system_add(ca_path, ca));
  const auto dbs = trust::nss_databases();
  const std::string certutil = trust::find_program("certutil");
  if (certutil.empty()) {
    // Without a database there is no browser profile to fill: a note, not a failure.
    lines.push_back({!any_nss_database(dbs), no_certutil_line("add the CA to")});
    return lines;
  }
  for (const auto& db : dbs) lines.push_back(trust::nss_add(certutil, db, ca_path, ca));
  return lines;
}

std::vector<store_line> remove_everywhere(const X509* ca) {
  std::vector<store_line> lines;
  lines.push_back(trust::system_remove(ca));
  const auto dbs = trust::nss_databases();
  if (!any_nss_database(dbs)) return lines;
  const std::string certutil = trust::find_program("certutil");
  if (certutil.empty()) {
    lines.push_back({false, no_certutil_line("remove the CA from")});
    return lines;
  }
  for (const auto& db : dbs)
    if (db.exists) lines.push_back(trust::nss_remove(certutil, db));
  return lines;
}

std::vector<store_line> check_everywhere(const tls::key_pair& ca) {
  std::vector<store_line> lines;
  lines.push_back(trust::system_check(ca));
  const auto dbs = trust::nss_databases();
  if (!any_nss_database(dbs)) return lines;
  const std::string certutil = trust::find_program("certutil");
  if (certutil.empty()) {
    lines.push_back({false, no_certutil_line("check")});
    return lines;
  }
  for (const auto& db : dbs)
    if (db.exists) lines.push_back(trust::nss_check(certutil, db, *ca.cert));
  return lines;
}

int print_lines(const std::vector<store_line>& lines, const char* all_ok, const char* not_all_ok) {
  bool ok = true;
  for (const auto& line : lines) {
    std::cout << line.text << "\n";
    ok = ok && line.ok;
  }
  std::cout << (ok ? all_ok : not_all_ok) << "\n";
  return ok ? 0 : 1;
}

// What the tools print goes to the home folder's proxy.log (appended, as the daemon does); with no home
// folder yet, nowhere.
void open_log(const std::string& home) {
  struct stat st {};
  if (::stat(home.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && log::open_file(home + "/proxy.log")) return;
  log::set_min_level(log::level::error);
}

}  // namespace

int run_trust(trust_action action, const proxy_options& options) {
  settings s;
  std::vector<std::string> warnings;
  if (const std::string error = resolve_settings(options, s, warnings); !error.empty()) {
    std::cerr << "[x] " << error << "\n";
    return 1;
  }
  if (s.home.empty()) {
    std::cerr << "[x] cannot find the home folder: set PRIVATECONNECT_HOME or HOME\n";
    return 1;
  }
  const std::string ca_shown = shown_home(s.home) + "/certs/ca.crt";

  if (action == trust_action::trust) {
    std::cout << "🔒 Trusting Private Connect local CA...\n\n";
    local_ca ca;
    std::string error;
    if (!ensure_ca(s.home, s.domains, ca, error)) {
      std::cout << "  [x] " << error << "\n";
      return 1;
    }
    open_log(s.home);
    for (const auto& w : warnings) log::warn(w);
    if (ca.generated) std::cout << "  [ok] Generated local CA\n";
    return print_lines(add_everywhere(ca_cert_path(s.home), *ca.pair.cert),
                       "  Browsers will now trust Private Connect HTTPS certificates.",
                       "  Not every store trusts the CA yet — see the lines above.");
  }

  open_log(s.home);
  for (const auto& w : warnings) log::warn(w);
  const loaded_ca ca = load_ca(s.home);
  if (action == trust_action::check) {
    std::cout << "🔒 Checking Private Connect local CA...\n\n";
    if (!ca.pair.cert) {
      std::cout << "  [x] No usable local CA at " << ca_shown << " (" << ca.error << ")\n"
                << "  Run: connect proxy trust\n";
      return 1;
    }
    return print_lines(check_everywhere(ca.pair), "  Browsers trust Private Connect HTTPS certificates.",
                       "  Run: connect proxy trust");
  }
  std::cout << "🔓 Removing Private Connect local CA...\n\n";
  return print_lines(remove_everywhere(ca.pair.cert.get()),
                     "  Browsers will no longer trust Private Connect HTTPS certificates.",
                     "  Not every store let go of the CA — see the lines above.");
}

bool ca_is_trusted(const X509& ca) {
  if (trust::system_trusts(ca)) return true;
  const std::string certutil = trust::find_program("certutil");
  if (certutil.empty()) return false;
  for (const auto& db : trust::nss_databases())
    if (db.chrome) return db.exists && trust::nss_trusts(certutil, db, ca);
  return false;
}

std::vector<std::string> install_ca_lines(const std::string& home) {
  const loaded_ca ca = load_ca(home);
  if (!ca.pair.cert)
    return {"  [x] No usable local CA at " + shown_home(home) + "/certs/ca.crt (" + ca.error + ")"};
  std::vector<std::string> out;
  for (auto& line : add_everywhere(ca_cert_path(home), *ca.pair.cert)) out.push_back(std::move(line.text));
  return out;
}

ca_check check_ca(const std::string& home) {
  ca_check out;
  const loaded_ca ca = load_ca(home);
  out.present = ca.error != "missing";
  if (!ca.pair.cert) {
    out.problem = out.present ? ca.error : "";
    return out;
  }
  out.not_after = tls::not_after(*ca.pair.cert);
  for (auto& line : check_everywhere(ca.pair)) out.stores.emplace_back(line.ok, std::move(line.text));
  return out;
}

}  // namespace cproxy::control
