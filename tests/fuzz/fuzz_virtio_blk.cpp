// Fuzz target: virtio-blk's request handling (devices/virtio/blk.h, blk_request.h) on top of the virtqueue walker,
// with a real io_uring backend on a 64 KiB memfd image (opened through /proc/self/fd/N). The input configures one
// or two queues (size, features, ring addresses), then runs up to 32 operations — a queue notify, a wait for
// completions and their handler, a driver store into RAM, a device reset and re-activation — on a small guest RAM
// whose contents are the rest of the input (so descriptors, headers and segment lists are the fuzzer's). Checks:
// nothing is thrown out of the device (fail() is its reaction to a broken queue); used_buffers() names an existing
// queue; requests in flight always complete; after reset nothing is in flight and the completion fd is unwatched;
// ASan/UBSan see no access outside guest RAM or the image.
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "devices/virtio/blk.h"
#include "memory/guest_memory.h"

namespace {

using iovmm::GuestMemory;
using iovmm::devices::virtio::VirtioBlk;
using iovmm::devices::virtio::VirtioBlkOptions;
using iovmm::devices::virtio::VirtioContext;
using iovmm::devices::virtio::Virtqueue;

constexpr uint64_t kImageBytes = 64 * 1024;

[[noreturn]] void fail(const char* what, uint64_t a = 0) {
  std::fprintf(stderr, "fuzz_virtio_blk: %s (%#llx)\n", what, static_cast<unsigned long long>(a));
  std::abort();
}

struct Config {       // 16 bytes
  uint8_t size_log2;  // queue size 2 << (size_log2 % 4): 2..16
  uint8_t features;   // bit 0 event index, bit 1 indirect, bit 2 two queues, bits 3-4 DISCARD / WRITE_ZEROES offered
                      // to be negotiated, bit 5 read-only image
  uint8_t op_count;   // operations that follow (at most 32)
  uint8_t reserved;
  uint16_t desc, avail, used;  // ring addresses in 16-byte units (queue 1's rings follow at +0x1000)
  uint16_t reserved2;
  uint32_t reserved3;
};
static_assert(sizeof(Config) == 16);

struct Op {  // 8 bytes
  uint8_t kind;
  uint8_t a;
  uint16_t b;
  uint32_t value;
};
static_assert(sizeof(Op) == 8);

// The image: one memfd for the whole run, emptied per input (truncate and extend: it reads as zeroes again).
int image_fd() {
  static const int fd = [] {
    const int f = ::memfd_create("fuzz-virtio-blk", MFD_CLOEXEC);
    if (f < 0) fail("memfd_create");
    return f;
  }();
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, kImageBytes) != 0) fail("ftruncate");
  return fd;
}

struct Transport {
  GuestMemory memory{{{0x0, 0x10000}, {0x20000, 0x10000}, {0x30000, 0x10000}}};
  std::vector<Virtqueue> queues;
  int watched = -1;
  std::function<void()> handler;
  unsigned failures = 0;
  std::unique_ptr<VirtioContext> context;

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

void set_up_queues(Transport& t, const Config& config, unsigned count, uint16_t max_size) {
  t.queues.clear();
  for (unsigned q = 0; q < count; ++q) {
    t.queues.emplace_back(max_size);
    Virtqueue& queue = t.queues.back();
    queue.set_size(static_cast<uint16_t>(2u << (config.size_log2 % 4)));
    queue.set_desc_addr(config.desc * 16ull + q * 0x1000ull);
    queue.set_avail_addr(config.avail * 16ull + q * 0x1000ull);
    queue.set_used_addr(config.used * 16ull + q * 0x1000ull);
    queue.set_features(config.features & 1, config.features & 2);
    queue.set_ready(true);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Transport t;
  if (size < sizeof(Config)) return 0;
  Config config;
  std::memcpy(&config, data, sizeof(config));
  const size_t op_count = std::min<size_t>(config.op_count % 33, (size - sizeof(Config)) / sizeof(Op));
  const uint8_t* ops = data + sizeof(Config);
  const size_t image_offset = sizeof(Config) + op_count * sizeof(Op);
  t.load(data + image_offset, size - image_offset);

  const unsigned queue_count = (config.features & 4) ? 2 : 1;
  const std::string path = "/proc/self/fd/" + std::to_string(image_fd());
  auto blk = std::make_unique<VirtioBlk>(
      iovmm::block::Backend::open({.path = path, .readonly = (config.features & 32) != 0, .queue_depth = 16}),
      VirtioBlkOptions{.queues = queue_count, .queue_size = 16});
  set_up_queues(t, config, queue_count, blk->queue_max_size());
  t.failures = 0;
  t.context = std::make_unique<VirtioContext>(VirtioContext{t.memory, t.queues,
                                                            [&](unsigned q) {
                                                              if (q >= queue_count)
                                                                fail("used_buffers for a queue that does not exist", q);
                                                              (void)t.queues[q].needs_interrupt(t.memory);
                                                            },
                                                            [&](std::string_view) { ++t.failures; },
                                                            [&](int fd, std::function<void()> handler) {
                                                              if (t.watched != -1) fail("watched twice", fd);
                                                              t.watched = fd;
                                                              t.handler = std::move(handler);
                                                            },
                                                            [&](int fd) {
                                                              if (fd != t.watched)
                                                                fail("unwatched an fd that was not watched", fd);
                                                              t.watched = -1;
                                                              t.handler = nullptr;
                                                            }});
  // Whatever the device offers, the "driver" accepts a fuzzer-chosen subset of DISCARD and WRITE_ZEROES.
  const uint64_t offered = blk->device_features();
  const uint64_t refused = ((config.features & 8) ? 0 : uint64_t{1} << VIRTIO_BLK_F_DISCARD) |
                           ((config.features & 16) ? 0 : uint64_t{1} << VIRTIO_BLK_F_WRITE_ZEROES);
  blk->activate(*t.context, offered & ~refused);

  for (size_t i = 0; i < op_count; ++i) {
    Op op;
    std::memcpy(&op, ops + i * sizeof(Op), sizeof(op));
    switch (op.kind % 4) {
      case 0:
        blk->queue_notify(op.a % (queue_count + 1));  // sometimes a queue that does not exist
        break;
      case 1:  // the event loop: wait for the backend, then run the handler
        if (t.handler && blk->requests_in_flight() > 0) {
          pollfd pfd{t.watched, POLLIN, 0};
          if (::poll(&pfd, 1, 2000) != 1) fail("requests in flight but no completion within 2 s");
          t.handler();
        }
        break;
      case 2:  // the driver stores 2 or 4 bytes anywhere in RAM (rings, descriptors, headers, data)
        if (op.a & 1) {
          (void)t.memory.write_obj<uint32_t>(op.b * 4ull, op.value);
        } else {
          (void)t.memory.write_obj<uint16_t>(op.b * 4ull, static_cast<uint16_t>(op.value));
        }
        break;
      case 3:  // device reset (with requests possibly in flight), then the driver sets everything up again
        blk->reset();
        if (t.watched != -1 || blk->requests_in_flight() != 0) fail("reset left work behind");
        set_up_queues(t, config, queue_count, blk->queue_max_size());
        blk->activate(*t.context, offered & ~refused);
        break;
    }
  }
  blk->reset();
  if (t.watched != -1 || blk->requests_in_flight() != 0) fail("reset left work behind");
  blk.reset();
  t.context.reset();
  return 0;
}
