// Unit tests for proxy/exchange_heads.hpp: a worker's pool of heads' storage hands back what an ended
// exchange gave it, with its buffers, and keeps neither oversized heads nor more than its bound.
#include "proxy/exchange_heads.hpp"

#include <string>
#include <vector>

#include "support/unit_test.hpp"

namespace {

using cproxy::proxy::exchange_heads;
using cproxy::proxy::exchange_heads_pool;
using cproxy::proxy::heads_lease;

BOOST_AUTO_TEST_SUITE(exchange_heads_pool_suite)

BOOST_AUTO_TEST_CASE(heads_given_back_are_lent_again_with_their_buffers) {
  exchange_heads_pool pool;
  const exchange_heads* first = nullptr;
  const char* head_bytes = nullptr;
  {
    heads_lease heads = pool.take();
    heads->client_head.assign(600, 'x');
    first = heads.get();
    head_bytes = heads->client_head.data();
  }
  BOOST_TEST(pool.spares() == 1u);
  heads_lease again = pool.take();
  BOOST_TEST(again.get() == first);
  BOOST_TEST(again->client_head.data() == head_bytes);
  BOOST_TEST(pool.spares() == 0u);
}

BOOST_AUTO_TEST_CASE(heads_that_grew_past_the_bound_are_freed_not_kept) {
  exchange_heads_pool pool;
  {
    heads_lease heads = pool.take();
    heads->client_head.assign(exchange_heads_pool::max_kept_bytes + 1, 'x');  // a large first body chunk
  }
  BOOST_TEST(pool.spares() == 0u);
  {
    heads_lease heads = pool.take();
    heads->request.fields.resize(200);  // a head of many fields
  }
  BOOST_TEST(pool.spares() == 0u);
}

BOOST_AUTO_TEST_CASE(the_pool_keeps_at_most_its_bound) {
  exchange_heads_pool pool;
  {
    std::vector<heads_lease> leases;
    for (std::size_t i = 0; i < exchange_heads_pool::max_spares + 10; ++i) leases.push_back(pool.take());
  }
  BOOST_TEST(pool.spares() == exchange_heads_pool::max_spares);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
