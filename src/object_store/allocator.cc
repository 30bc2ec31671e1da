#include "object_store/allocator.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <new>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "object_store/format_bytes.h"

namespace lumen::object_store {
namespace {

namespace bip = boost::interprocess;

constexpr uint64_t kAlignment = 64;

// The best-fit allocator keeps its headers inside the region (a few words per block,
// plus what allocate_aligned pads), so the region is larger than `capacity`: the store
// counts only object bytes against the capacity, and they must all fit.
uint64_t RegionSize(uint64_t capacity) { return capacity + capacity / 32 + (1u << 20); }

absl::Status FromBoost(const bip::interprocess_exception& e, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", e.what());
  switch (e.get_error_code()) {
    case bip::not_found_error:
      return absl::NotFoundError(message);
    case bip::already_exists_error:
      return absl::AlreadyExistsError(message);
    case bip::security_error:
      return absl::PermissionDeniedError(message);
    case bip::out_of_space_error:
    case bip::out_of_memory_error:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Boost's best-fit allocator over memory mapped by its owner. managed_shared_memory is
// not used because it puts a header before its segment manager (get_address() is not
// byte 0 of the shm object), and managed_heap_memory zero-fills, committing the whole
// capacity up front; here offset 0 is the first byte of the mapping in both cases.
class BestFit {
 public:
  BestFit(uint8_t* start, uint64_t size) : start_(start), buffer_(bip::create_only, start, size) {}

  // Boost's allocate_aligned asks for a free block about 100 bytes larger than `size`,
  // so the block freed by an object could never take an object of the same size again,
  // the common case. Instead a plain block `kAlignment` bytes larger is taken and the
  // object starts at its first aligned byte: a freed block fits the same size exactly.
  std::optional<uint64_t> Allocate(uint64_t size) {
    if (size > UINT64_MAX - kAlignment) return std::nullopt;
    void* block = buffer_.allocate(size + kAlignment, std::nothrow);
    if (block == nullptr) return std::nullopt;
    uint64_t raw = static_cast<uint64_t>(static_cast<uint8_t*>(block) - start_);
    uint64_t aligned = (raw + kAlignment - 1) / kAlignment * kAlignment;
    blocks_[aligned] = raw;
    return aligned;
  }
  void Free(uint64_t offset) {
    auto it = blocks_.find(offset);
    LUMEN_CHECK(it != blocks_.end());
    buffer_.deallocate(start_ + it->second);
    blocks_.erase(it);
  }
  uint8_t* start() const { return start_; }

 private:
  uint8_t* start_;  // page-aligned (mmap), so aligned offsets are aligned addresses
  bip::managed_external_buffer buffer_;
  absl::flat_hash_map<uint64_t, uint64_t> blocks_;  // object offset -> block offset
};

}  // namespace

struct ShmAllocator::Impl {
  bip::shared_memory_object shm;
  bip::mapped_region region;
  std::optional<BestFit> fit;
};

absl::StatusOr<std::unique_ptr<ShmAllocator>> ShmAllocator::Create(const std::string& name,
                                                                   uint64_t capacity) {
  // A segment of this name can only be a leftover of a process that died (names are
  // per session), and create_only would refuse it.
  bip::shared_memory_object::remove(name.c_str());
  uint64_t size = RegionSize(capacity);
  // tmpfs accepts a segment larger than its free space and then kills the process with
  // SIGBUS when a page cannot be backed, so check now while it can still be explained.
  std::optional<uint64_t> available = ShmAvailableBytes();
  if (available && *available < size) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the object store needs ", FormatBytes(size), " of /dev/shm (", FormatBytes(capacity),
        " for objects plus the allocator's bookkeeping) but only ", FormatBytes(*available),
        " is free; set a smaller object_store_memory or free space in /dev/shm"));
  }
  try {
    auto impl = std::make_unique<Impl>();
    impl->shm = bip::shared_memory_object(bip::create_only, name.c_str(), bip::read_write);
    impl->shm.truncate(static_cast<bip::offset_t>(size));
    // Held while the segment lives: a sweep (Session::Create, in any process sharing this
    // /dev/shm, whatever pid namespace it is in) removes only segments nobody holds.
    flock(impl->shm.get_mapping_handle().handle, LOCK_SH);
    impl->region = bip::mapped_region(impl->shm, bip::read_write);
    impl->fit.emplace(static_cast<uint8_t*>(impl->region.get_address()), size);
    return std::unique_ptr<ShmAllocator>(new ShmAllocator(name, capacity, std::move(impl)));
  } catch (const bip::interprocess_exception& e) {
    bip::shared_memory_object::remove(name.c_str());
    return FromBoost(e, "cannot create the shared-memory segment " + name);
  }
}

ShmAllocator::ShmAllocator(std::string name, uint64_t capacity, std::unique_ptr<Impl> impl)
    : name_(std::move(name)), capacity_(capacity), impl_(std::move(impl)) {}

ShmAllocator::~ShmAllocator() {
  impl_.reset();
  bip::shared_memory_object::remove(name_.c_str());
}

std::optional<uint64_t> ShmAllocator::Allocate(uint64_t size) { return impl_->fit->Allocate(size); }
void ShmAllocator::Free(uint64_t offset) { impl_->fit->Free(offset); }
uint8_t* ShmAllocator::base() { return impl_->fit->start(); }
uint64_t ShmAllocator::mapped_size() const { return impl_->region.get_size(); }

struct HeapAllocator::Impl {
  explicit Impl(uint64_t size)
      : size(size),
        // Anonymous and MAP_NORESERVE: pages are committed when objects touch them, as
        // with the shared segment, not all at construction.
        start(static_cast<uint8_t*>(mmap(nullptr, size, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0))) {
    LUMEN_CHECK(start != MAP_FAILED);
    fit.emplace(start, size);
  }
  ~Impl() {
    fit.reset();
    munmap(start, size);
  }
  uint64_t size;
  uint8_t* start;
  std::optional<BestFit> fit;
};

HeapAllocator::HeapAllocator(uint64_t capacity)
    : capacity_(capacity), impl_(std::make_unique<Impl>(RegionSize(capacity))) {}
HeapAllocator::~HeapAllocator() = default;
std::optional<uint64_t> HeapAllocator::Allocate(uint64_t size) {
  return impl_->fit->Allocate(size);
}
void HeapAllocator::Free(uint64_t offset) { impl_->fit->Free(offset); }
uint8_t* HeapAllocator::base() { return impl_->fit->start(); }

struct ShmMapping::Impl {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

absl::StatusOr<std::unique_ptr<ShmMapping>> ShmMapping::Open(const std::string& name,
                                                             uint64_t size) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->shm = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write);
    bip::offset_t actual = 0;
    impl->shm.get_size(actual);
    // Pages past the end of the object would map but fault (SIGBUS) when touched.
    if (static_cast<uint64_t>(actual) < size) {
      return absl::FailedPreconditionError(
          absl::StrCat("shared-memory segment ", name, " has ", actual, " bytes, not ", size));
    }
    impl->region = bip::mapped_region(impl->shm, bip::read_write, 0, size);
    auto* base = static_cast<uint8_t*>(impl->region.get_address());
    uint64_t mapped = impl->region.get_size();
    return std::unique_ptr<ShmMapping>(new ShmMapping(std::move(impl), base, mapped));
  } catch (const bip::interprocess_exception& e) {
    return FromBoost(e, "cannot map the shared-memory segment " + name);
  }
}

ShmMapping::ShmMapping(std::unique_ptr<Impl> impl, uint8_t* base, uint64_t size)
    : impl_(std::move(impl)), base_(base), size_(size) {}
ShmMapping::~ShmMapping() = default;

std::optional<uint64_t> ShmAvailableBytes() {
  struct statvfs info {};
  if (statvfs("/dev/shm", &info) != 0) return std::nullopt;
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

}  // namespace lumen::object_store
