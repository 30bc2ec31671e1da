// The state API's request parsing, filtering and paging, shared by the head's HTTP server
// (/api/v0/...) and the GCS's QueryState RPC (the CLI and lumen::state). Rows are JSON
// objects offered in a stable key order; a page ends with a continuation token (the last
// key) from which the next page starts, so paging returns every row once, however many.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace lumen::gcs {

struct StateFilter {
  std::string key;
  bool equal = true;  // "key=value"; false: "key!=value"
  std::string value;
};

struct StateRequest {
  enum Kind { kList, kGet, kSummarize };
  std::string resource;  // "tasks", "actors", ...
  Kind kind = kList;
  std::string id;        // kGet: the row's id (hex)
  std::vector<StateFilter> filters;
  size_t limit = 100;
  std::string token;     // continuation: rows after this (hex) key
};

/// The largest page one request may ask for (more: page with the token).
constexpr size_t kMaxStateLimit = 10000;

/// A reply as HTTP gives it: the status and a JSON body.
struct StateReply {
  int status = 200;
  std::string body;
};
StateReply ErrorReply(int status, const std::string& message);  // {"error": message}
StateReply JsonReply(const nlohmann::json& body);

/// Parses "/api/v0/RESOURCE[/ID|/summarize]?filter=K=V&filter=K!=V&limit=N&token=T".
/// NotFound: not a state API path; InvalidArgument: a bad parameter (the message says).
absl::StatusOr<StateRequest> ParseStateTarget(std::string_view target);

/// Collects one page of a list: offer every row in key order.
class StatePage {
 public:
  /// `columns`: the keys a filter may name (InvalidArgument from Check otherwise).
  StatePage(const StateRequest& request, std::vector<std::string> columns);
  absl::Status Check() const;
  /// A column's value as a filter compares it (FilterText of the row's field).
  using ColumnText = std::function<std::string(const std::string& column)>;
  /// A row at `key` (binary, increasing from call to call); `build` makes it when the
  /// page needs it. Filters read `text` when given (cheaper than building every row of a
  /// large table), else the built row.
  void Offer(const std::string& key, const std::function<nlohmann::json()>& build,
             const ColumnText& text = nullptr);
  /// {"rows": [...], "total": matching rows, "next_token": "" at the end, "warnings": [...]}
  nlohmann::json Result(const std::vector<std::string>& warnings) const;

 private:
  bool Matches(const ColumnText& text) const;

  const StateRequest& request_;
  std::vector<std::string> columns_;
  std::string after_;  // binary form of the token
  nlohmann::json rows_ = nlohmann::json::array();
  std::string last_key_;
  bool more_ = false;
  uint64_t total_ = 0;
};

/// A value's text as a filter compares it (strings as they are, numbers and bools as JSON).
std::string FilterText(const nlohmann::json& value);

}  // namespace lumen::gcs
