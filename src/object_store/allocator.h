// Space for object payloads: one contiguous region, handed out in blocks. The node store
// decides what to keep; an Allocator only finds room. Offsets are relative to the
// region's start, so every process that maps the region can use them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace lumen::object_store {

class Allocator {
 public:
  virtual ~Allocator() = default;
  /// `size` bytes (size > 0), 64-byte aligned; nullopt when no free block is large
  /// enough (the region is full or fragmented).
  virtual std::optional<uint64_t> Allocate(uint64_t size) = 0;
  /// Returns a block from Allocate.
  virtual void Free(uint64_t offset) = 0;
  /// Where offset 0 is in this process.
  virtual uint8_t* base() = 0;
  /// Bytes that objects may use in all (the store's capacity).
  virtual uint64_t capacity() const = 0;
};

/// A POSIX shared-memory segment (/dev/shm/<name>) managed by Boost.Interprocess's
/// best-fit allocator. The segment is mapped a little larger than `capacity` to hold the
/// allocator's own bookkeeping; the name is removed when the allocator is destroyed.
/// Client processes map it with ShmMapping.
class ShmAllocator final : public Allocator {
 public:
  /// Fails (ResourceExhausted, with the sizes) when /dev/shm cannot hold `capacity`.
  static absl::StatusOr<std::unique_ptr<ShmAllocator>> Create(const std::string& name,
                                                                uint64_t capacity);
  ~ShmAllocator() override;
  std::optional<uint64_t> Allocate(uint64_t size) override;
  void Free(uint64_t offset) override;
  uint8_t* base() override;
  uint64_t capacity() const override { return capacity_; }
  const std::string& name() const { return name_; }
  /// Bytes a client must map (the whole segment).
  uint64_t mapped_size() const;

 private:
  struct Impl;
  ShmAllocator(std::string name, uint64_t capacity, std::unique_ptr<Impl> impl);
  std::string name_;
  uint64_t capacity_;
  std::unique_ptr<Impl> impl_;
};

/// The same best-fit allocator over process memory: for tests, and for nodes that must
/// not use /dev/shm.
class HeapAllocator final : public Allocator {
 public:
  explicit HeapAllocator(uint64_t capacity);
  ~HeapAllocator() override;
  std::optional<uint64_t> Allocate(uint64_t size) override;
  void Free(uint64_t offset) override;
  uint8_t* base() override;
  uint64_t capacity() const override { return capacity_; }

 private:
  struct Impl;
  uint64_t capacity_;
  std::unique_ptr<Impl> impl_;
};

/// A client's read-write mapping of a node's segment.
class ShmMapping {
 public:
  static absl::StatusOr<std::unique_ptr<ShmMapping>> Open(const std::string& name,
                                                            uint64_t size);
  ~ShmMapping();
  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }

 private:
  struct Impl;
  ShmMapping(std::unique_ptr<Impl> impl, uint8_t* base, uint64_t size);
  std::unique_ptr<Impl> impl_;
  uint8_t* base_;
  uint64_t size_;
};

/// Bytes /dev/shm can still take (statvfs), or nullopt when it cannot be read.
std::optional<uint64_t> ShmAvailableBytes();

}  // namespace lumen::object_store
