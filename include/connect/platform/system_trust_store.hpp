// The operating system's trust store: where an extra root goes and which commands make the system take
// it (or drop it). Linux: the distribution from ROOT/etc/os-release, its CA folder and update tool.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cproxy::platform {

struct system_trust_store {
  std::string anchor_dir;                        // under root: where an extra root's file goes
  std::string bundle;                            // the PEM file the tools write, which OpenSSL/curl/... read
  std::vector<std::string> update_after_add;     // argv, argv[0] a bare name
  std::vector<std::string> update_after_remove;  // argv, argv[0] a bare name
  bool relocatable = false;                      // the tool can write under another root
  std::string nss_package;                       // the package that has certutil
};

// The store of the system installed under `root` ("" for "/", never a trailing slash). nullopt with
// `error` set ("unknown distribution 'gentoo' (/etc/os-release)") when it is not a known one.
std::optional<system_trust_store> find_system_trust_store(const std::string& root, std::string& error);

}  // namespace cproxy::platform
