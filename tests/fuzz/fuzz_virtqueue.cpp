// Fuzz target: the split virtqueue walker (devices/virtio/queue.h) against a driver that writes anything. The input
// configures a queue (size, features, ring addresses: misaligned, in holes or outside RAM allowed), then runs up to
// 64 operations — pop, push of a popped head, needs_interrupt, set_notifications, a driver store into the rings or
// anywhere in RAM, a ring move, a reset — on a small guest RAM with a hole and two adjacent regions, whose contents
// are the rest of the input. Checks: nothing but QueueError is thrown; every popped descriptor lies in RAM by an
// independent model; a chain is bounded (queue size + the largest indirect table); a queue that pops has aligned
// rings in RAM; ASan/UBSan see no access outside guest RAM.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace {

using iovmm::GuestMemory;
using iovmm::RamRange;
using iovmm::devices::virtio::QueueError;
using iovmm::devices::virtio::Virtqueue;

// 0-64 KiB, a hole, then 128-192 KiB and 192-256 KiB (adjacent: a buffer may span them).
const std::vector<RamRange>& ranges() {
  static const std::vector<RamRange> kRanges = {{0x0, 0x10000}, {0x20000, 0x10000}, {0x30000, 0x10000}};
  return kRanges;
}
constexpr uint64_t kMaxIndirect = 4096;  // queue.cpp's bound on an indirect table
constexpr uint16_t kMaxQueueSize = 16;

bool model_contains(uint64_t gpa, uint64_t len) {
  if (len == 0) return true;
  // Merged by hand: [0, 0x10000) and [0x20000, 0x40000).
  const uint64_t starts[] = {0x0, 0x20000};
  const uint64_t ends[] = {0x10000, 0x40000};
  for (size_t i = 0; i < 2; ++i) {
    if (gpa >= starts[i] && gpa < ends[i] && len <= ends[i] - gpa) return true;
  }
  return false;
}

[[noreturn]] void fail(const char* what, uint64_t a = 0, uint64_t b = 0) {
  std::fprintf(stderr, "fuzz_virtqueue: %s (%#llx, %#llx)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

struct Config {       // 16 bytes
  uint8_t size_log2;  // queue size 1 << (size_log2 % 5): 1..16
  uint8_t features;   // bit 0 event index, bit 1 indirect
  uint8_t op_count;   // operations that follow (at most 64)
  uint8_t reserved;
  uint32_t desc, avail, used;
};
static_assert(sizeof(Config) == 16);

struct Op {  // 8 bytes
  uint8_t kind;
  uint8_t a;
  uint16_t b;
  uint32_t value;
};
static_assert(sizeof(Op) == 8);

// Addresses: mostly near RAM (so that rings can work), sometimes anywhere in 32 bits.
uint64_t ring_address(uint32_t raw) { return (raw & 0x80000000u) ? raw : (raw & 0x3FFFF); }

struct Fixture {
  GuestMemory memory{ranges()};
  void load(const uint8_t* data, size_t size) {
    for (const auto& region : memory.regions()) {
      const size_t n = std::min<size_t>(size, region.size);
      std::memcpy(region.host, data, n);
      std::memset(region.host + n, 0, region.size - n);
      data += n;
      size -= n;
    }
  }
};

void check_chain(const Virtqueue& queue, const iovmm::devices::virtio::DescriptorChain& chain) {
  if (chain.head >= queue.size()) fail("head out of range", chain.head, queue.size());
  if (chain.descriptors.size() > queue.size() + kMaxIndirect) fail("chain too long", chain.descriptors.size());
  for (const auto& d : chain.descriptors) {
    if (!model_contains(d.addr, d.len)) fail("popped a buffer outside RAM", d.addr, d.len);
  }
  const uint64_t n = queue.size();
  if (queue.desc_addr() % 16 || queue.avail_addr() % 2 || queue.used_addr() % 4) fail("popped from misaligned rings");
  if (!model_contains(queue.desc_addr(), 16 * n) || !model_contains(queue.avail_addr(), 6 + 2 * n) ||
      !model_contains(queue.used_addr(), 6 + 8 * n)) {
    fail("popped from rings outside RAM", queue.desc_addr(), queue.used_addr());
  }
}

void configure(Virtqueue& queue, const Config& config, uint32_t desc, uint32_t avail, uint32_t used) {
  queue.set_size(static_cast<uint16_t>(1u << (config.size_log2 % 5)));
  queue.set_desc_addr(ring_address(desc));
  queue.set_avail_addr(ring_address(avail));
  queue.set_used_addr(ring_address(used));
  queue.set_features(config.features & 1, config.features & 2);
  queue.set_ready(true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (size < sizeof(Config)) return 0;
  Config config;
  std::memcpy(&config, data, sizeof(config));
  const size_t op_count = std::min<size_t>(config.op_count % 65, (size - sizeof(Config)) / sizeof(Op));
  const uint8_t* ops = data + sizeof(Config);
  const size_t image_offset = sizeof(Config) + op_count * sizeof(Op);
  fixture.load(data + image_offset, size - image_offset);
  GuestMemory& memory = fixture.memory;

  Virtqueue queue(kMaxQueueSize);
  configure(queue, config, config.desc, config.avail, config.used);
  std::vector<uint16_t> popped;  // heads the "device" holds

  for (size_t i = 0; i < op_count; ++i) {
    Op op;
    std::memcpy(&op, ops + i * sizeof(Op), sizeof(op));
    try {
      switch (op.kind % 8) {
        case 0:
        case 1: {  // pop (twice as likely)
          auto chain = queue.pop(memory);
          if (chain) {
            check_chain(queue, *chain);
            if (popped.size() < 64) popped.push_back(chain->head);
          }
          break;
        }
        case 2:  // push back a held chain
          if (!popped.empty()) {
            const size_t k = op.a % popped.size();
            queue.push(memory, popped[k], op.value);
            popped.erase(popped.begin() + static_cast<ptrdiff_t>(k));
          }
          break;
        case 3:
          (void)queue.needs_interrupt(memory);
          break;
        case 4:
          queue.set_notifications(memory, op.a & 1);
          break;
        case 5: {  // the driver stores 2 or 4 bytes: relative to a ring, or anywhere
          const uint64_t bases[] = {queue.desc_addr(), queue.avail_addr(), queue.used_addr(), 0};
          const uint64_t gpa = bases[op.a % 4] + op.b;
          if (op.a & 4) {
            (void)memory.write_obj<uint32_t>(gpa, op.value);
          } else {
            (void)memory.write_obj<uint16_t>(gpa, static_cast<uint16_t>(op.value));
          }
          break;
        }
        case 6:  // the driver moves a ring or changes the size
          switch (op.a % 4) {
            case 0:
              queue.set_desc_addr(ring_address(op.value));
              break;
            case 1:
              queue.set_avail_addr(ring_address(op.value));
              break;
            case 2:
              queue.set_used_addr(ring_address(op.value));
              break;
            case 3:
              queue.set_size(static_cast<uint16_t>(op.value));
              break;
          }
          break;
        case 7:  // reset and set up again
          queue.reset();
          popped.clear();
          configure(queue, config, op.value, op.value + op.b, op.value + 2u * op.b);
          break;
      }
    } catch (const QueueError&) {
      // The device would need a reset; carrying on exercises a queue in whatever state the error left it.
    }
  }
  return 0;
}
