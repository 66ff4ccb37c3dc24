// Implementation of exchange_heads.hpp.
#include "exchange_heads.hpp"

namespace cproxy::proxy {
namespace {

std::size_t fields_footprint(const std::vector<http::field>& fields) {
  std::size_t bytes = fields.capacity() * sizeof(http::field);
  for (const http::field& f : fields) bytes += f.name.capacity() + f.value.capacity();
  return bytes;
}

}  // namespace

std::size_t exchange_heads::footprint() const noexcept {
  return fields_footprint(request.fields) + request.method.capacity() + request.target.capacity() +
         request.host.capacity() + request.authority.capacity() + fields_footprint(response.fields) +
         response.reason.capacity() + upstream_head.capacity() + client_head.capacity();
}

void give_back::operator()(exchange_heads* heads) const noexcept {
  pool->give(heads);
}

heads_lease exchange_heads_pool::take() {
  if (spares_.empty()) return heads_lease(new exchange_heads, give_back{this});
  heads_lease heads(spares_.back().release(), give_back{this});
  spares_.pop_back();
  return heads;
}

void exchange_heads_pool::give(exchange_heads* heads) noexcept {
  std::unique_ptr<exchange_heads> owned(heads);
  if (spares_.size() < max_spares && owned->footprint() <= max_kept_bytes)
    spares_.push_back(std::move(owned));
}

}  // namespace cproxy::proxy
