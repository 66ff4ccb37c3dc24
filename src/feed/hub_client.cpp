// Implementation of hub_client.hpp: the request's steps in order, each bounded by what is left of the
// one deadline; an io error of operation_canceled anywhere is the stop.
#include "hub_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "connect/io/backend.hpp"
#include "connect/io/endpoint.hpp"
#include "connect/io/result.hpp"
#include "connect/io/socket.hpp"
#include "connect/io/stream.hpp"
#include "connect/tls/client_context.hpp"
#include "connect/tls/tls_stream.hpp"
#include "hub_lookup.hpp"

namespace cproxy::control::hub_http {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class hub_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hub"; }
  std::string message(int e) const override {
    switch (static_cast<hub_errc>(e)) {
      case hub_errc::cancelled:
        return "the hub request was cancelled";
      case hub_errc::timed_out:
        return "the hub did not answer in time";
      case hub_errc::lookup_failed:
        return "the hub's name has no address";
      case hub_errc::connect_failed:
        return "the hub refused the connection";
      case hub_errc::tls_failed:
        return "the TLS handshake with the hub failed";
      case hub_errc::certificate_rejected:
        return "the hub's certificate is not trusted";
      case hub_errc::transfer_failed:
        return "the connection to the hub broke";
      case hub_errc::bad_response:
        return "the hub's answer is not a readable HTTP response";
    }
    return "unknown hub error";
  }
};

milliseconds left_until(clock::time_point deadline) {
  const auto left = std::chrono::ceil<milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : milliseconds{1};
}

// An io error as the fetch's failure: a cancel is the stop, a timeout says which step it cut.
fetch_result failed(const std::error_code& ec, const std::string& doing, milliseconds timeout,
                    hub_errc otherwise) {
  fetch_result out;
  if (io::is_cancelled(ec)) {
    out.ec = hub_errc::cancelled;
  } else if (io::is_timeout(ec)) {
    out.ec = hub_errc::timed_out;
    out.detail = "no answer within " + std::to_string(timeout.count()) + " ms (" + doing + ")";
  } else {
    out.ec = otherwise;
    out.detail = doing + ": " + ec.message();
  }
  return out;
}

std::string request_text(const url& where, const std::string& target, const header_list& headers) {
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + where.authority + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Connection: close\r\n\r\n";
  return request;
}

}  // namespace

const std::error_category& hub_category() noexcept {
  static const hub_category_impl category;
  return category;
}

coro::task<fetch_result> get(io::context* ctx, url where, std::string target, header_list headers,
                             milliseconds timeout) {
  const clock::time_point deadline = clock::now() + timeout;

  std::vector<io::endpoint> addresses;
  if (const std::optional<io::endpoint> numeric = io::endpoint::from(where.host, where.port)) {
    addresses.push_back(*numeric);
  } else {
    coro::task<lookup_result> looking = lookup(ctx, where.host, where.port, left_until(deadline));
    lookup_result found = co_await std::move(looking);
    if (found.ec) co_return fetch_result{found.ec, found.detail, 0, {}};
    addresses = std::move(found.addresses);
  }

  // The addresses in order, as getaddrinfo ranks them; the last refusal is the one reported.
  io::socket connected;
  fetch_result refused{hub_errc::connect_failed, "cannot connect to " + where.authority, 0, {}};
  for (const io::endpoint& to : addresses) {
    std::error_code ec;
    io::socket s = io::socket::open(*ctx, to.family(), ec);
    if (!ec) {
      auto connecting = s.connect(to, left_until(deadline));
      ec = co_await connecting;
    }
    if (!ec) {
      connected = std::move(s);
      break;
    }
    if (io::is_cancelled(ec) || io::is_timeout(ec))
      co_return failed(ec, "connecting to " + where.authority, timeout, hub_errc::connect_failed);
    refused.detail = "cannot connect to " + where.authority + ": " + ec.message();
  }
  if (!connected.is_open()) co_return refused;

  std::unique_ptr<io::stream> stream;
  SSL* session = nullptr;  // owned by the tls_stream
  if (!where.tls) {
    stream = std::make_unique<io::socket_stream>(std::move(connected));
  } else {
    // A context per request: reloads the trust store, so a CA installed while the proxy runs counts.
    std::string problem;
    tls::ssl_ctx_ptr tls_ctx = tls::make_client_context(problem);
    tls::ssl_ptr ssl = tls_ctx ? tls::new_client_session(*tls_ctx, where.host, problem) : nullptr;
    if (!ssl) co_return fetch_result{hub_errc::tls_failed, "TLS: " + problem, 0, {}};
    session = ssl.get();
    auto tls_stream =
        std::make_unique<tls::tls_stream>(std::move(connected), std::move(ssl), std::span<const std::byte>{});
    const std::error_code ec = co_await tls_stream->handshake(ctx, left_until(deadline));
    if (ec) {
      if (io::is_cancelled(ec) || io::is_timeout(ec))
        co_return failed(ec, "TLS handshake", timeout, hub_errc::tls_failed);
      const long verify = SSL_get_verify_result(session);
      if (verify != X509_V_OK)
        co_return fetch_result{hub_errc::certificate_rejected,
                               std::string("TLS handshake failed: certificate not trusted: ") +
                                   X509_verify_cert_error_string(verify),
                               0,
                               {}};
      const std::string why =
          tls_stream->failure_reason().empty() ? ec.message() : tls_stream->failure_reason();
      co_return fetch_result{hub_errc::tls_failed, "TLS handshake failed: " + why, 0, {}};
    }
    stream = std::move(tls_stream);
  }

  const std::string request = request_text(where, target, headers);
  const std::span<const std::byte> request_bytes(reinterpret_cast<const std::byte*>(request.data()),
                                                 request.size());
  const io::io_result sent = co_await stream->write_all(request_bytes, left_until(deadline));
  if (sent.ec) co_return failed(sent.ec, "sending the request", timeout, hub_errc::transfer_failed);

  response_reader reader;
  std::array<std::byte, 16 * 1024> buf;
  response_reader::status s = response_reader::status::more;
  while (s == response_reader::status::more) {
    const io::io_result got = co_await stream->read_some(buf, left_until(deadline));
    if (got.ec) co_return failed(got.ec, "reading the response", timeout, hub_errc::transfer_failed);
    if (got.bytes > 0) {
      s = reader.feed(std::string_view(reinterpret_cast<const char*>(buf.data()), got.bytes));
    } else if (session && reader.ends_at_close() && !(SSL_get_shutdown(session) & SSL_RECEIVED_SHUTDOWN)) {
      // A close without close_notify may be a cut: it never ends a body that only the close ends.
      co_return fetch_result{hub_errc::transfer_failed,
                             "reading the response: the connection closed without a TLS close_notify",
                             0,
                             {}};
    } else {
      s = reader.finish();
    }
  }
  if (s == response_reader::status::invalid)
    co_return fetch_result{hub_errc::bad_response, reader.error(), 0, {}};
  co_return fetch_result{{}, {}, reader.code(), reader.body()};
}

}  // namespace cproxy::control::hub_http
