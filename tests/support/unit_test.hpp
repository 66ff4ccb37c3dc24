// The one way test files include Boost.Test: the suite links the shared Boost.Test library, so every
// translation unit must agree on BOOST_TEST_DYN_LINK. main.cpp defines BOOST_TEST_MODULE before this.
#pragma once

#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>
