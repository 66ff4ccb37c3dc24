// Implementation of connect/io/select_backend.hpp: probing io_uring and creating contexts.
#include "connect/io/select_backend.hpp"

#include <fstream>
#include <system_error>

#include "asio/asio_context.hpp"
#ifdef CONNECT_HAVE_URING
#include <liburing.h>

#include "uring/uring_context.hpp"
#endif

namespace cproxy::io {

std::string_view to_string(backend_kind k) noexcept {
  return k == backend_kind::uring ? "uring" : "asio";
}

std::optional<backend_choice> parse_backend_choice(std::string_view text) {
  if (text == "auto") return backend_choice::automatic;
  if (text == "uring") return backend_choice::uring;
  if (text == "asio") return backend_choice::asio;
  return std::nullopt;
}

std::string probe_uring() {
#ifndef CONNECT_HAVE_URING
  return "this build has no io_uring backend";
#else
  // kernel.io_uring_disabled (Linux >= 6.6): 2 disables io_uring for everyone; 1 leaves it to
  // members of kernel.io_uring_group, which io_uring_setup itself will tell us about below.
  if (std::ifstream sysctl("/proc/sys/kernel/io_uring_disabled"); sysctl) {
    int disabled = 0;
    if (sysctl >> disabled && disabled == 2) return "kernel.io_uring_disabled is 2";
  }
  io_uring ring;
  const int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) return "io_uring_setup failed: " + std::error_code(-rc, std::generic_category()).message();
  std::string missing;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
    const std::pair<int, const char*> needed[] = {
        {IORING_OP_ACCEPT, "accept"},
        {IORING_OP_CONNECT, "connect"},
        {IORING_OP_RECV, "recv"},
        {IORING_OP_SEND, "send"},
        {IORING_OP_SENDMSG, "sendmsg"},
        {IORING_OP_TIMEOUT, "timeout"},
        {IORING_OP_LINK_TIMEOUT, "link_timeout"},
        {IORING_OP_ASYNC_CANCEL, "async_cancel"},
        {IORING_OP_READ, "read"},
        {IORING_OP_POLL_ADD, "poll_add"},
    };
    for (const auto& [opcode, name] : needed) {
      if (!io_uring_opcode_supported(probe, opcode))
        missing += missing.empty() ? name : std::string(", ") + name;
    }
    io_uring_free_probe(probe);
  } else {
    missing = "the opcode probe";
  }
  io_uring_queue_exit(&ring);
  if (!missing.empty()) return "io_uring lacks " + missing;
  return {};
#endif
}

std::optional<backend_decision> decide_backend(backend_choice choice, std::string& error) {
  if (choice == backend_choice::asio) return backend_decision{backend_kind::asio, {}};
  std::string reason = probe_uring();
  if (reason.empty()) return backend_decision{backend_kind::uring, {}};
  if (choice == backend_choice::uring) {
    error = "io_uring is not usable here: " + reason;
    return std::nullopt;
  }
  return backend_decision{backend_kind::asio, std::move(reason)};
}

std::unique_ptr<context> make_context(backend_kind kind) {
#ifdef CONNECT_HAVE_URING
  if (kind == backend_kind::uring) return std::make_unique<uring::uring_context>();
#else
  if (kind == backend_kind::uring)
    throw std::system_error(std::make_error_code(std::errc::not_supported), "io_uring");
#endif
  return make_asio_context();
}

}  // namespace cproxy::io
