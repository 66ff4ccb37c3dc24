// connect/platform/system_trust_store.hpp under a temp root: each distribution family found by ID or
// ID_LIKE gets its CA folder, bundle and tools; an unknown or unreadable os-release says why.
#include "connect/platform/system_trust_store.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using strings = std::vector<std::string>;

std::optional<cproxy::platform::system_trust_store> store_for(const cproxy::test::temp_dir& root,
                                                              const std::string& os_release,
                                                              std::string& error) {
  std::filesystem::create_directories(root.file("etc"));
  root.write("etc/os-release", os_release);
  return cproxy::platform::find_system_trust_store(root.path, error);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(platform_system_trust_store)

BOOST_AUTO_TEST_CASE(debian_writes_under_another_root_with_every_folder_named) {
  cproxy::test::temp_dir root("connect-platform");
  std::string error;
  const auto store = store_for(root, "NAME=\"Ubuntu\"\nID=ubuntu\n", error);
  BOOST_TEST_REQUIRE(store.has_value(), error);
  const std::string r = root.path;
  BOOST_TEST(store->anchor_dir == r + "/usr/local/share/ca-certificates");
  BOOST_TEST(store->bundle == r + "/etc/ssl/certs/ca-certificates.crt");
  BOOST_TEST(store->relocatable);
  BOOST_TEST(store->nss_package == "libnss3-tools");
  const strings add = {"update-ca-certificates",
                       "--certsconf",
                       r + "/etc/ca-certificates.conf",
                       "--certsdir",
                       r + "/usr/share/ca-certificates",
                       "--localcertsdir",
                       r + "/usr/local/share/ca-certificates",
                       "--etccertsdir",
                       r + "/etc/ssl/certs",
                       "--hooksdir",
                       r + "/etc/ca-certificates/update.d"};
  BOOST_TEST(store->update_after_add == add, boost::test_tools::per_element());
  strings remove = add;
  remove.push_back("--fresh");
  BOOST_TEST(store->update_after_remove == remove, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_system_root_names_no_folders_on_the_command_line) {
  std::string error;
  const auto store = cproxy::platform::find_system_trust_store("", error);
  if (!store) return;  // this machine is none of the four families: nothing to compare
  if (store->update_after_add[0] == "update-ca-certificates" && store->relocatable)
    BOOST_TEST(store->update_after_add == strings{"update-ca-certificates"},
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(id_like_finds_the_family) {
  cproxy::test::temp_dir root("connect-platform");
  std::string error;
  const auto store = store_for(root, "ID=rocky\nID_LIKE=\"rhel centos fedora\"\n", error);
  BOOST_TEST_REQUIRE(store.has_value(), error);
  BOOST_TEST(store->anchor_dir == root.path + "/etc/pki/ca-trust/source/anchors");
  BOOST_TEST(store->update_after_add == (strings{"update-ca-trust", "extract"}),
             boost::test_tools::per_element());
  BOOST_TEST(!store->relocatable);
  BOOST_TEST(store->nss_package == "nss-tools");

  const auto arch = store_for(root, "ID=arch\n", error);
  BOOST_TEST_REQUIRE(arch.has_value(), error);
  BOOST_TEST(arch->update_after_remove == (strings{"trust", "extract-compat"}),
             boost::test_tools::per_element());
  const auto suse = store_for(root, "ID='opensuse-tumbleweed'\n", error);
  BOOST_TEST_REQUIRE(suse.has_value(), error);
  BOOST_TEST(suse->anchor_dir == root.path + "/etc/pki/trust/anchors");
}

BOOST_AUTO_TEST_CASE(an_unknown_or_missing_os_release_says_why) {
  cproxy::test::temp_dir root("connect-platform");
  std::string error;
  BOOST_TEST(!cproxy::platform::find_system_trust_store(root.path, error).has_value());
  BOOST_TEST(error == "cannot read " + root.path + "/etc/os-release");
  BOOST_TEST(!store_for(root, "ID=gentoo\n", error).has_value());
  BOOST_TEST(error == "unknown distribution 'gentoo' (" + root.path + "/etc/os-release)");
}

BOOST_AUTO_TEST_SUITE_END()
