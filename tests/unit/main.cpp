// The unit suite's module: pure modules (routes, config files, HTTP parsing) tested with byte arrays and
// temp files. This file only names the module; the cases live beside it in tests/unit/<module>/.
#define BOOST_TEST_MODULE unit
#include "support/unit_test.hpp"
