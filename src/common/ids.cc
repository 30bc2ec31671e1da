#include "common/ids.h"

#include <atomic>
#include <random>

namespace lumen {
namespace {

struct UniqueSource {
  uint64_t prefix;
  std::atomic<uint64_t> counter;
  UniqueSource() {
    std::random_device rd;
    prefix = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    counter = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
};

}  // namespace

void FillUniqueBytes(uint8_t* out, size_t size) {
  static UniqueSource source;
  // splitmix64 over (prefix, counter): distinct per call, unpredictable across processes.
  uint64_t n = source.counter.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < size; i += 8) {
    uint64_t z = source.prefix + (n + i) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (size_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = uint8_t(z >> (8 * j));
  }
}

}  // namespace lumen
