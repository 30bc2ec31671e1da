// lumen::Put, Get and Wait.
#pragma once

#include <chrono>
#include <memory>
#include <type_traits>
#include <vector>

#include "lumen/detail/runtime.h"
#include "lumen/errors.h"
#include "lumen/object_ref.h"

namespace lumen {

/// Stores `value` in the cluster, owned by this process, and returns its reference.
template <typename T>
ObjectRef<T> Put(const T& value) {
  detail::CheckInitialized("Put");
  if constexpr (detail::kIsBlob<T>) {
    if (size_t size = detail::BlobSize(value); size > 0) {
      return ObjectRef<T>::Adopt(
          detail::PutWith(size, [&value](char* out) { detail::WriteBlob(value, out); }));
    }
  }
  std::vector<detail::RefData> nested;
  std::string data = detail::Serialize<T>(value, &nested);
  return ObjectRef<T>::Adopt(detail::Put(std::move(data), std::move(nested)));
}

namespace detail {
template <typename T>
std::shared_ptr<const T> Decode(const Buffer& buffer) {
  if constexpr (std::is_void_v<T>) {
    return nullptr;
  } else if constexpr (kIsBlob<T>) {
    // In shared memory: a view of the stored bytes, no copy.
    if (buffer.shared && ViewLayoutHolds<T>()) {
      int64_t count = BlobCount<T>(buffer.data, buffer.size);
      if (count >= 0) return ViewBlob<T>(buffer.data, count, buffer.keep_alive);
    }
    return std::make_shared<T>(Deserialize<T>(buffer.data, buffer.size));
  } else {
    return std::make_shared<T>(Deserialize<T>(buffer.data, buffer.size));
  }
}
}  // namespace detail

/// Waits for the values of `refs` and returns them in order. Values are immutable: each
/// comes back as a `const T`. Large strings and vectors of trivially copyable elements in
/// the node's shared memory come back as views of it, without a copy; the `const` is what
/// keeps user code from writing or resizing shared bytes. Copy a value to change it
/// (`auto v = *lumen::Get(ref);`). A negative timeout waits forever. Throws the error of
/// the first failed object (TaskError, WorkerCrashedError, TaskCancelledError, ...), or
/// GetTimeoutError. For ObjectRef<void> the pointers are empty.
template <typename T>
std::vector<std::shared_ptr<const T>> Get(const std::vector<ObjectRef<T>>& refs,
                                    std::chrono::milliseconds timeout) {
  detail::CheckInitialized("Get");
  std::vector<detail::RefData> data;
  data.reserve(refs.size());
  for (const auto& ref : refs) data.push_back(ref.Data());
  std::vector<detail::Buffer> buffers = detail::Get(data, timeout);
  std::vector<std::shared_ptr<const T>> out;
  out.reserve(buffers.size());
  for (const auto& buffer : buffers) out.push_back(detail::Decode<T>(buffer));
  detail::RegisterBorrowed();  // refs inside the values, while `refs` hold them
  return out;
}

template <typename T>
std::vector<std::shared_ptr<const T>> Get(const std::vector<ObjectRef<T>>& refs) {
  return Get(refs, std::chrono::milliseconds(-1));
}

template <typename T>
std::shared_ptr<const T> Get(const ObjectRef<T>& ref, std::chrono::milliseconds timeout) {
  detail::CheckInitialized("Get");
  std::vector<detail::Buffer> buffers = detail::Get({ref.Data()}, timeout);
  std::shared_ptr<const T> value = detail::Decode<T>(buffers.at(0));
  detail::RegisterBorrowed();  // refs inside the value, while `ref` holds it
  return value;
}

template <typename T>
std::shared_ptr<const T> Get(const ObjectRef<T>& ref) {
  return Get(ref, std::chrono::milliseconds(-1));
}

template <typename T>
std::shared_ptr<const T> ObjectRef<T>::Get() const {
  return lumen::Get(*this);
}

template <typename T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;    // in input order
  std::vector<ObjectRef<T>> unready;  // in input order
};

/// Returns when `num_returns` of `refs` are ready (hold a value or an error) or the
/// timeout passes; `ready` holds at most num_returns refs. Throws ConfigError when
/// num_returns is not in [1, refs.size()] (0 is allowed for an empty list).
template <typename T>
WaitResult<T> Wait(const std::vector<ObjectRef<T>>& refs, int num_returns,
                   std::chrono::milliseconds timeout) {
  detail::CheckInitialized("Wait");
  std::vector<detail::RefData> data;
  data.reserve(refs.size());
  for (const auto& ref : refs) data.push_back(ref.Data());
  std::vector<bool> flags = detail::Wait(data, num_returns, timeout);
  WaitResult<T> result;
  int taken = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (flags[i] && taken < num_returns) {
      result.ready.push_back(refs[i]);
      ++taken;
    } else {
      result.unready.push_back(refs[i]);
    }
  }
  return result;
}

/// Cancels the task that makes `ref`. A task still queued, or waiting for its arguments,
/// is dropped: Get throws TaskCancelledError. A task already sent to its worker is left
/// to run, unless `force`: then its worker is killed (the task is not retried; other
/// tasks sent to that worker run again elsewhere) and Get throws TaskCancelledError. A
/// finished task: nothing happens. Throws ConfigError when `ref` is not the result of a
/// task this process submitted (a Put, an actor call, a ref owned by another process).
template <typename T>
void Cancel(const ObjectRef<T>& ref, bool force = false) {
  detail::CheckInitialized("Cancel");
  detail::Cancel(ref.Data(), force);
}

}  // namespace lumen
