// absl::Status helpers shared by every component.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LUMEN_STATUS_CONCAT_INNER(a, b) a##b
#define LUMEN_STATUS_CONCAT(a, b) LUMEN_STATUS_CONCAT_INNER(a, b)

/// Returns the status from the enclosing function when `expr` is not OK.
#define LUMEN_RETURN_IF_ERROR(expr)                    \
  do {                                                 \
    ::absl::Status lumen_status_ = (expr);             \
    if (!lumen_status_.ok()) return lumen_status_;     \
  } while (0)

/// `LUMEN_ASSIGN_OR_RETURN(auto x, StatusOrExpr());`
#define LUMEN_ASSIGN_OR_RETURN(lhs, expr)                                        \
  auto LUMEN_STATUS_CONCAT(lumen_statusor_, __LINE__) = (expr);                  \
  if (!LUMEN_STATUS_CONCAT(lumen_statusor_, __LINE__).ok())                      \
    return LUMEN_STATUS_CONCAT(lumen_statusor_, __LINE__).status();              \
  lhs = std::move(LUMEN_STATUS_CONCAT(lumen_statusor_, __LINE__)).value()

/// Invariants only (never input): aborts with the failed condition.
#define LUMEN_CHECK(cond)                                                         \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "lumen: check failed at %s:%d: %s\n", __FILE__,        \
                   __LINE__, #cond);                                              \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
