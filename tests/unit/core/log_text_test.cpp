// Unit tests for connect/core/log_text.hpp: what escaped() keeps, what it writes as an escape, and
// where it cuts, so that a name from a file or a hub can never make a log line of its own.
#include "connect/core/log_text.hpp"

#include <string>

#include "support/unit_test.hpp"

namespace {

using cproxy::log::escaped;

}  // namespace

BOOST_AUTO_TEST_SUITE(log_text)

BOOST_AUTO_TEST_CASE(plain_names_and_utf8_stay_as_they_are) {
  BOOST_TEST(escaped("api") == "api");
  BOOST_TEST(escaped("my-app_2.test") == "my-app_2.test");
  BOOST_TEST(escaped("caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x8C\x90") ==
             "caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x8C\x90");
  BOOST_TEST(escaped("") == "");
}

BOOST_AUTO_TEST_CASE(line_breaks_quotes_and_backslashes_are_escaped) {
  BOOST_TEST(escaped("a\nb\rc\td") == "a\\nb\\rc\\td");
  BOOST_TEST(escaped("say \"hi\" \\ bye") == "say \\\"hi\\\" \\\\ bye");
  const std::string forged = escaped("x\n2026-01-01T00:00:00.000Z forged");
  BOOST_TEST(forged == "x\\n2026-01-01T00:00:00.000Z forged");
  BOOST_TEST(forged.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_control_bytes_and_invisible_breaks_become_hex) {
  BOOST_TEST(escaped(std::string("a\0b", 3)) == "a\\x00b");
  BOOST_TEST(escaped("\x1B[31mred\x7F") == "\\x1B[31mred\\x7F");
  BOOST_TEST(escaped("a\xC2\x85z") == "a\\xC2\\x85z");           // U+0085 NEL, a C1 control
  BOOST_TEST(escaped("a\xE2\x80\xA8z") == "a\\xE2\\x80\\xA8z");  // U+2028 LINE SEPARATOR
  BOOST_TEST(escaped("a\xE2\x80\xAEz") == "a\\xE2\\x80\\xAEz");  // U+202E RIGHT-TO-LEFT OVERRIDE
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_utf8_become_hex_one_by_one) {
  BOOST_TEST(escaped("a\xFF"
                     "b") == "a\\xFFb");
  BOOST_TEST(escaped("\xC3") == "\\xC3");                    // cut short
  BOOST_TEST(escaped("\xC0\xAF") == "\\xC0\\xAF");           // overlong '/'
  BOOST_TEST(escaped("\xED\xA0\x80") == "\\xED\\xA0\\x80");  // a UTF-16 surrogate
  BOOST_TEST(escaped("\xE2\x86"
                     "A") == "\\xE2\\x86A");  // the next byte is read afresh
}

BOOST_AUTO_TEST_CASE(long_text_is_cut_at_a_character_with_an_ellipsis) {
  BOOST_TEST(escaped(std::string(100, 'a')) == std::string(100, 'a'));
  BOOST_TEST(escaped(std::string(101, 'a')) == std::string(100, 'a') + "...");
  BOOST_TEST(escaped(std::string(10'000'000, '\n'), 8).size() == 8 * 2 + 3);
  BOOST_TEST(escaped("ab\xE2\x86\x92", 4) == "ab...");  // the arrow would pass the limit: not split
  BOOST_TEST(escaped("abcdef", 3) == "abc...");
}

BOOST_AUTO_TEST_SUITE_END()
