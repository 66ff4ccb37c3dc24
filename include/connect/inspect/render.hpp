// render: the inspector's JSON (product.md, Inspector): the list, one exchange in detail, HAR 1.2, and
// the summary an SSE event carries. Pure: records in, text out.
#pragma once

#include <string>
#include <vector>

#include "connect/inspect/store.hpp"

namespace cproxy::inspect {

std::string summary_json(const record& r);
std::string list_json(const std::vector<record_ptr>& records);
std::string detail_json(const record& r);
// `redact`: Authorization, Cookie, Set-Cookie and Proxy-Authorization values read "[redacted]".
std::string har_json(const std::vector<record_ptr>& records, bool redact, const std::string& version);

// ISO-8601 UTC with milliseconds, as everywhere in the contract.
std::string iso_time(std::chrono::system_clock::time_point t);
bool is_utf8(std::string_view s) noexcept;
std::string base64(std::string_view s);

}  // namespace cproxy::inspect
