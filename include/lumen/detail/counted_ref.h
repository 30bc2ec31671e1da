// The reference a handle holds: ObjectRef and ActorHandle count as references while they
// exist, with the same copy and move rules.
#pragma once

#include <string>
#include <utility>

#include "lumen/detail/runtime.h"

namespace lumen::detail {

/// A RefData counted as one local reference while this holds it (nothing for an empty
/// id). A ref kept past Shutdown counts nothing in a later session. Thread-safe to copy
/// and destroy concurrently (distinct objects).
class CountedRef {
 public:
  CountedRef() = default;
  CountedRef(const CountedRef& other) : data_(other.data_) { Acquire(); }
  CountedRef(CountedRef&& other) noexcept : data_(std::move(other.data_)) { other.data_ = {}; }
  CountedRef& operator=(const CountedRef& other) {
    if (this != &other) {
      Release();
      data_ = other.data_;
      Acquire();
    }
    return *this;
  }
  CountedRef& operator=(CountedRef&& other) noexcept {
    if (this != &other) {
      Release();
      data_ = std::move(other.data_);
      other.data_ = {};
    }
    return *this;
  }
  ~CountedRef() { Release(); }

  /// Adopts a reference that the runtime already counted.
  static CountedRef Adopt(RefData data) {
    CountedRef ref;
    ref.data_ = std::move(data);
    return ref;
  }
  /// A new reference to `data` (received from elsewhere), counted now.
  static CountedRef FromData(RefData data) {
    CountedRef ref;
    ref.data_ = std::move(data);
    ref.data_.session = CurrentSession();
    ref.Acquire();
    return ref;
  }
  const RefData& data() const { return data_; }

 private:
  void Acquire() {
    if (!data_.id.empty() && data_.session == CurrentSession()) {
      AddLocalRef(data_.id, data_.owner);
    }
  }
  void Release() {
    if (!data_.id.empty() && data_.session == CurrentSession()) RemoveLocalRef(data_.id);
  }

  RefData data_;
};

}  // namespace lumen::detail
