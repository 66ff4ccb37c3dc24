// timeouts.hold in config.json (product.md, "Restarting upstreams"): whole seconds like the other
// timeouts, but 0 is allowed (it turns restart-holding off), with the same exact error texts.
#include <string>

#include "connect/config/config_file.hpp"
#include "support/unit_test.hpp"

namespace {
using cproxy::control::config_result;
using cproxy::control::parse_config;
const std::string path = "/cfg/c.json";
}  // namespace

BOOST_AUTO_TEST_SUITE(config_hold_timeout)

BOOST_AUTO_TEST_CASE(hold_takes_zero_and_whole_seconds) {
  for (const unsigned seconds : {0u, 1u, 10u, 2147483u}) {
    const config_result r =
        parse_config(R"({"timeouts": {"hold": )" + std::to_string(seconds) + "}}", path, true);
    BOOST_TEST_REQUIRE(r.error.empty(), r.error);
    BOOST_TEST(r.value->timeouts.hold.value_or(99) == seconds);
  }
  const config_result absent = parse_config(R"({"timeouts": {"connect": 5}})", path, true);
  BOOST_TEST_REQUIRE(absent.error.empty(), absent.error);
  BOOST_TEST(!absent.value->timeouts.hold.has_value());
}

BOOST_AUTO_TEST_CASE(hold_out_of_range_names_the_key) {
  const std::string prefix = "config file /cfg/c.json: ";
  for (const auto& [value, shown] : {std::pair<std::string, std::string>{"-1", "-1"},
                                     {"2147484", "2147484"},
                                     {"1.5", "1.5E0"},
                                     {"\"10\"", "\"10\""}}) {
    const config_result r = parse_config(R"({"timeouts": {"hold": )" + value + "}}", path, true);
    BOOST_TEST(!r.value.has_value());
    BOOST_TEST(r.error == prefix +
                              R"("timeouts.hold" must be a whole number of seconds from 0 to 2147483, not )" +
                              shown);
  }
  // The other timeouts still start at 1.
  const config_result r = parse_config(R"({"timeouts": {"connect": 0}})", path, true);
  BOOST_TEST(r.error ==
             prefix + R"("timeouts.connect" must be a whole number of seconds from 1 to 2147483, not 0)");
}

BOOST_AUTO_TEST_SUITE_END()
