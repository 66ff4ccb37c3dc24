// Linux implementation of connect/platform/system_trust_store.hpp: the distribution family from
// ROOT/etc/os-release (ID, then ID_LIKE), its anchor folder, its bundle and the tool that rebuilds it.
#include "connect/platform/system_trust_store.hpp"

#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

namespace cproxy::platform {
namespace {

enum class family { debian, fedora, arch, suse };

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// The value of KEY=value in os-release text, unquoted.
std::string os_release_value(const std::string& text, std::string_view key) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != '=') continue;
    std::string value = line.substr(key.size() + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    return value;
  }
  return {};
}

std::optional<family> family_of(std::string_view id) {
  if (id == "debian" || id == "ubuntu") return family::debian;
  if (id == "fedora" || id == "rhel" || id == "centos") return family::fedora;
  if (id == "arch") return family::arch;
  if (id == "suse" || id == "opensuse" || id.starts_with("opensuse-") || id == "sles" || id == "sled")
    return family::suse;
  return std::nullopt;
}

system_trust_store store_of(family kind, const std::string& root) {
  system_trust_store d;
  switch (kind) {
    case family::debian:
      d.anchor_dir = root + "/usr/local/share/ca-certificates";
      d.bundle = root + "/etc/ssl/certs/ca-certificates.crt";
      d.update_after_add = {"update-ca-certificates"};
      if (!root.empty()) {
        // update-ca-certificates(8) takes every folder it uses as an option.
        d.update_after_add.insert(
            d.update_after_add.end(),
            {"--certsconf", root + "/etc/ca-certificates.conf", "--certsdir",
             root + "/usr/share/ca-certificates", "--localcertsdir", d.anchor_dir, "--etccertsdir",
             root + "/etc/ssl/certs", "--hooksdir", root + "/etc/ca-certificates/update.d"});
      }
      // --fresh: a removed local certificate otherwise leaves its symlink behind (update-ca-certificates(8)).
      d.update_after_remove = d.update_after_add;
      d.update_after_remove.push_back("--fresh");
      d.relocatable = true;
      d.nss_package = "libnss3-tools";
      break;
    case family::fedora:
      d.anchor_dir = root + "/etc/pki/ca-trust/source/anchors";
      d.bundle = root + "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem";
      d.update_after_add = d.update_after_remove = {"update-ca-trust", "extract"};
      d.nss_package = "nss-tools";
      break;
    case family::arch:
      d.anchor_dir = root + "/etc/ca-certificates/trust-source/anchors";
      d.bundle = root + "/etc/ca-certificates/extracted/tls-ca-bundle.pem";
      d.update_after_add = d.update_after_remove = {"trust", "extract-compat"};
      d.nss_package = "nss";
      break;
    case family::suse:
      d.anchor_dir = root + "/etc/pki/trust/anchors";
      d.bundle = root + "/var/lib/ca-certificates/ca-bundle.pem";
      d.update_after_add = d.update_after_remove = {"update-ca-certificates"};
      d.nss_package = "mozilla-nss-tools";
      break;
  }
  return d;
}

}  // namespace

std::optional<system_trust_store> find_system_trust_store(const std::string& root, std::string& error) {
  const std::string path = root + "/etc/os-release";
  std::string text;
  if (!read_file(path, text)) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  const std::string id = os_release_value(text, "ID");
  if (auto kind = family_of(id)) return store_of(*kind, root);
  std::istringstream like(os_release_value(text, "ID_LIKE"));
  for (std::string word; like >> word;)
    if (auto kind = family_of(word)) return store_of(*kind, root);
  error = "unknown distribution '" + id + "' (" + path + ")";
  return std::nullopt;
}

}  // namespace cproxy::platform
