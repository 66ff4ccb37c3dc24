// Implementation of connect/http/request_head.hpp on Boost.Beast's request_parser.
#include "connect/http/request_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace cproxy::http {

namespace beast_http = boost::beast::http;

parse_status parse_request_head(std::string_view bytes, request_head& out, std::size_t& consumed) {
  beast_http::request_parser<beast_http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.eager(false);
  boost::beast::error_code ec;
  consumed = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec == beast_http::error::need_more) {
    return bytes.size() >= header_limit ? parse_status::too_large : parse_status::need_more;
  }
  if (ec == beast_http::error::header_limit) return parse_status::too_large;
  if (ec || !parser.is_header_done()) return parse_status::bad_request;
  const auto& req = parser.get();
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.host = std::string(req[beast_http::field::host]);
  out.version = req.version();
  out.keep_alive = req.keep_alive();
  out.has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
  return parse_status::complete;
}

}  // namespace cproxy::http
