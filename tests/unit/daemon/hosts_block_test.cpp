// Unit tests for connect/daemon/hosts_block.hpp: the connect-proxy block added, replaced and removed with
// every byte outside it kept (comments, CRLF, a missing final line end), and broken markers refused.
#include "connect/daemon/hosts_block.hpp"

#include <string>
#include <vector>

#include "support/unit_test.hpp"

using cproxy::control::edit_hosts_block;
using cproxy::control::hosts_block_lines;

namespace {

const std::vector<std::string> api = {"127.0.0.1 api.localhost"};
const std::vector<std::string> two = {"127.0.0.1 api.localhost", "127.0.0.1 web.localhost"};

// Adds `api`, checks the result, and that removing gives back `file` byte for byte.
void round_trip(const std::string& file, const std::string& with_block) {
  const auto added = edit_hosts_block(file, api);
  BOOST_TEST(added.error == "");
  BOOST_TEST(!added.had_block);
  BOOST_TEST(added.text == with_block);
  const auto again = edit_hosts_block(added.text, api);
  BOOST_TEST(again.text == with_block);  // idempotent
  const auto removed = edit_hosts_block(added.text, {});
  BOOST_TEST(removed.had_block);
  BOOST_TEST(removed.text == file);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hosts_block)

BOOST_AUTO_TEST_CASE(a_block_is_appended_and_removed_byte_for_byte) {
  round_trip("127.0.0.1\tlocalhost\n# a comment  \n::1 localhost ip6-localhost\n",
             "127.0.0.1\tlocalhost\n# a comment  \n::1 localhost ip6-localhost\n"
             "# connect-proxy begin\n127.0.0.1 api.localhost\n# connect-proxy end\n");
}

BOOST_AUTO_TEST_CASE(a_crlf_file_gets_a_crlf_block) {
  round_trip("127.0.0.1 localhost\r\n\r\n",
             "127.0.0.1 localhost\r\n\r\n"
             "# connect-proxy begin\r\n127.0.0.1 api.localhost\r\n# connect-proxy end\r\n");
}

BOOST_AUTO_TEST_CASE(a_file_without_a_final_line_end_keeps_having_none) {
  round_trip("127.0.0.1 localhost",
             "127.0.0.1 localhost\n# connect-proxy begin\n127.0.0.1 api.localhost\n"
             "# connect-proxy end");
  round_trip("127.0.0.1 localhost\r\n# last",
             "127.0.0.1 localhost\r\n# last\r\n# connect-proxy begin\r\n"
             "127.0.0.1 api.localhost\r\n# connect-proxy end");
}

BOOST_AUTO_TEST_CASE(an_empty_file_gets_the_block_alone) {
  round_trip("", "# connect-proxy begin\n127.0.0.1 api.localhost\n# connect-proxy end\n");
}

BOOST_AUTO_TEST_CASE(a_block_is_replaced_where_it_stands_with_its_own_line_ends) {
  const std::string file =
      "a\n# connect-proxy begin\r\n127.0.0.1 old.localhost\r\n# connect-proxy end\r\nb\n";
  const auto edit = edit_hosts_block(file, two);
  BOOST_TEST(edit.had_block);
  BOOST_TEST(edit.text ==
             "a\n# connect-proxy begin\r\n127.0.0.1 api.localhost\r\n127.0.0.1 web.localhost\r\n"
             "# connect-proxy end\r\nb\n");
  BOOST_TEST(edit_hosts_block(file, {}).text == "a\nb\n");
}

BOOST_AUTO_TEST_CASE(markers_with_spaces_around_them_are_markers) {
  const std::string file = "a\n  # connect-proxy begin \t\n127.0.0.1 x.localhost\n# connect-proxy end  \n";
  BOOST_TEST(edit_hosts_block(file, {}).text == "a\n");
}

BOOST_AUTO_TEST_CASE(broken_markers_are_refused_and_name_their_line) {
  BOOST_TEST(edit_hosts_block("a\n# connect-proxy begin\nb\n", api).error ==
             "line 2 has \"# connect-proxy begin\" without \"# connect-proxy end\" after it");
  BOOST_TEST(edit_hosts_block("a\n# connect-proxy end\n", {}).error ==
             "line 2 has \"# connect-proxy end\" without \"# connect-proxy begin\" before it");
  BOOST_TEST(
      edit_hosts_block("# connect-proxy begin\n# connect-proxy begin\n# connect-proxy end\n", api).error ==
      "line 2 has \"# connect-proxy begin\" again before \"# connect-proxy end\"");
  BOOST_TEST(edit_hosts_block("# connect-proxy begin\n# connect-proxy end\n# connect-proxy begin\n"
                              "# connect-proxy end\n",
                              api)
                 .error == "line 3 starts a second connect-proxy block");
  BOOST_TEST(
      edit_hosts_block("# connect-proxy begin\n# connect-proxy end\n# connect-proxy end\n", api).error ==
      "line 3 has \"# connect-proxy end\" without \"# connect-proxy begin\" before it");
}

BOOST_AUTO_TEST_CASE(removing_without_a_block_changes_nothing) {
  const auto edit = edit_hosts_block("a\r\nb", {});
  BOOST_TEST(!edit.had_block);
  BOOST_TEST(edit.text == "a\r\nb");
}

BOOST_AUTO_TEST_CASE(lines_name_each_route_under_localhost_and_each_dev_domain_once_sorted) {
  const auto lines = hosts_block_lines({"web", "api", "api"}, {"test"});
  const std::vector<std::string> want = {"127.0.0.1 api.localhost", "127.0.0.1 api.test",
                                         "127.0.0.1 web.localhost", "127.0.0.1 web.test"};
  BOOST_TEST(lines == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
