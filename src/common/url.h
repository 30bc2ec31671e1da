// Percent-encoding of URL query components (the state API's filters and tokens).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace lumen {

/// Everything but letters, digits and -_.~ as %XX.
std::string UrlEncode(std::string_view text);
/// %XX and '+' (a space) decoded; InvalidArgument when a % is not followed by two hex digits.
absl::StatusOr<std::string> UrlDecode(std::string_view text);

/// Hex digits (either case) to bytes; InvalidArgument when not an even number of them.
absl::StatusOr<std::string> HexDecode(std::string_view hex);

}  // namespace lumen
