#include "gcs/state_query.h"

#include <algorithm>
#include <charconv>

#include "common/ids.h"
#include "common/url.h"

namespace lumen::gcs {
namespace {

constexpr std::string_view kPrefix = "/api/v0/";

absl::Status AddParameter(std::string_view name, const std::string& value,
                          StateRequest* request) {
  if (name == "filter") {
    size_t at = value.find('=');
    if (at == std::string::npos || at == 0) {
      return absl::InvalidArgumentError("filter '" + value +
                                        "' is not KEY=VALUE or KEY!=VALUE");
    }
    StateFilter filter;
    filter.equal = value[at - 1] != '!';
    filter.key = value.substr(0, filter.equal ? at : at - 1);
    filter.value = value.substr(at + 1);
    if (filter.key.empty()) return absl::InvalidArgumentError("filter '" + value + "' has no key");
    request->filters.push_back(std::move(filter));
  } else if (name == "limit") {
    size_t limit = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), limit);
    if (error != std::errc() || end != value.data() + value.size() || limit == 0) {
      return absl::InvalidArgumentError("limit '" + value + "' is not a positive number");
    }
    if (limit > kMaxStateLimit) {
      return absl::InvalidArgumentError("limit " + value + " is above " +
                                        std::to_string(kMaxStateLimit) +
                                        ": page through with next_token");
    }
    request->limit = limit;
  } else if (name == "token") {
    auto decoded = HexDecode(value);
    if (!decoded.ok()) return absl::InvalidArgumentError("token '" + value + "' is malformed");
    request->token = value;
  } else {
    return absl::InvalidArgumentError("unknown parameter '" + std::string(name) +
                                      "' (known: filter, limit, token)");
  }
  return absl::OkStatus();
}

}  // namespace

StateReply ErrorReply(int status, const std::string& message) {
  return StateReply{status, nlohmann::json{{"error", message}}.dump()};
}

StateReply JsonReply(const nlohmann::json& body) {
  // Replace: a name or error text that is not UTF-8 must not make the reply fail.
  return StateReply{200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}


absl::StatusOr<StateRequest> ParseStateTarget(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  if (!path.starts_with(kPrefix)) return absl::NotFoundError("no such path");
  path.remove_prefix(kPrefix.size());
  while (path.ends_with('/')) path.remove_suffix(1);
  StateRequest request;
  size_t slash = path.find('/');
  request.resource = std::string(path.substr(0, slash));
  if (slash != std::string_view::npos) {
    std::string_view rest = path.substr(slash + 1);
    if (rest.find('/') != std::string_view::npos) return absl::NotFoundError("no such path");
    if (rest == "summarize") {
      request.kind = StateRequest::kSummarize;
    } else {
      request.kind = StateRequest::kGet;
      request.id = std::string(rest);
    }
  }
  while (!query.empty()) {
    std::string_view item = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), item.size() + 1));
    if (item.empty()) continue;
    size_t eq = item.find('=');
    auto name = UrlDecode(item.substr(0, eq));
    auto value = UrlDecode(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    if (!name.ok() || !value.ok()) {
      return absl::InvalidArgumentError("malformed query: '" + std::string(item) + "'");
    }
    if (absl::Status added = AddParameter(*name, *value, &request); !added.ok()) return added;
  }
  return request;
}

std::string FilterText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

StatePage::StatePage(const StateRequest& request, std::vector<std::string> columns)
    : request_(request), columns_(std::move(columns)) {
  auto after = HexDecode(request.token);
  if (after.ok()) after_ = *after;
}

absl::Status StatePage::Check() const {
  for (const StateFilter& filter : request_.filters) {
    if (std::find(columns_.begin(), columns_.end(), filter.key) == columns_.end()) {
      std::string known;
      for (const std::string& column : columns_) known += (known.empty() ? "" : ", ") + column;
      return absl::InvalidArgumentError("cannot filter " + request_.resource + " by '" +
                                        filter.key + "' (keys: " + known + ")");
    }
  }
  return absl::OkStatus();
}

bool StatePage::Matches(const ColumnText& text) const {
  for (const StateFilter& filter : request_.filters) {
    std::string value = text(filter.key);
    // Case-insensitive: states and types are upper case, ids lower case hex.
    bool same = value.size() == filter.value.size() &&
                std::equal(value.begin(), value.end(), filter.value.begin(), [](char a, char b) {
                  return std::tolower(static_cast<unsigned char>(a)) ==
                         std::tolower(static_cast<unsigned char>(b));
                });
    if (same != filter.equal) return false;
  }
  return true;
}

void StatePage::Offer(const std::string& key, const std::function<nlohmann::json()>& build,
                      const ColumnText& text) {
  bool in_page = (after_.empty() || key > after_) && !more_;
  nlohmann::json row;
  if (!request_.filters.empty()) {
    if (text) {
      if (!Matches(text)) return;
    } else {
      row = build();
      if (!Matches([&row](const std::string& column) {
            auto it = row.find(column);
            return it == row.end() ? std::string() : FilterText(*it);
          })) {
        return;
      }
    }
  }
  ++total_;
  if (!in_page) return;
  if (rows_.size() == request_.limit) {
    more_ = true;
    return;
  }
  rows_.push_back(row.is_null() ? build() : std::move(row));
  last_key_ = key;
}

nlohmann::json StatePage::Result(const std::vector<std::string>& warnings) const {
  nlohmann::json result;
  result["rows"] = rows_;
  result["total"] = total_;
  result["next_token"] = more_ ? HexEncode(last_key_) : "";
  result["warnings"] = warnings;
  return result;
}

}  // namespace lumen::gcs
