// The "inspect" member of config.json (product.md, Inspector): false, an object with requests and
// bodyBytes, and the errors for wrong values and unknown keys, with their exact texts.
#include "connect/config/config_file.hpp"
#include "support/unit_test.hpp"

using cproxy::control::config_result;
using cproxy::control::parse_config;

namespace {
const std::string p = "/made/up/config.json";
}

BOOST_AUTO_TEST_SUITE(inspect_config)

BOOST_AUTO_TEST_CASE(false_turns_the_inspector_off_and_an_object_sets_its_bounds) {
  const config_result off = parse_config(R"({"inspect": false})", p, true);
  BOOST_REQUIRE(off.value);
  BOOST_TEST((off.value->inspect.enabled == std::optional<bool>(false)));
  const config_result set = parse_config(R"({"inspect": {"requests": 50, "bodyBytes": 0}})", p, true);
  BOOST_REQUIRE_MESSAGE(set.value, set.error);
  BOOST_TEST((set.value->inspect.enabled == std::optional<bool>(true)));
  BOOST_TEST(*set.value->inspect.requests == 50u);
  BOOST_TEST(*set.value->inspect.body_bytes == 0u);
  const config_result none = parse_config("{}", p, true);
  BOOST_TEST(!none.value->inspect.enabled.has_value());
}

BOOST_AUTO_TEST_CASE(wrong_values_and_unknown_keys_are_named) {
  BOOST_TEST(
      parse_config(R"({"inspect": {"requests": 0}})", p, true).error ==
      "config file /made/up/config.json: \"inspect.requests\" must be an integer from 1 to 100000, not 0");
  BOOST_TEST(parse_config(R"({"inspect": {"bodyBytes": -1}})", p, true).error ==
             "config file /made/up/config.json: \"inspect.bodyBytes\" must be an integer from 0 to 16777216, "
             "not -1");
  BOOST_TEST(
      parse_config(R"({"inspect": "yes"})", p, true).error ==
      "config file /made/up/config.json: \"inspect\" must be false or an object such as {\"requests\": "
      "1000}, not \"yes\"");
  BOOST_TEST(parse_config(R"({"inspect": {"rows": 5}})", p, true).error ==
             "config file /made/up/config.json: unknown key \"inspect.rows\"");
  const config_result lenient = parse_config(R"({"inspect": {"rows": 5}})", p, false);
  BOOST_TEST(lenient.value.has_value());
  BOOST_TEST(lenient.warnings.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
