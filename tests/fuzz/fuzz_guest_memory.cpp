// Fuzz target: GuestMemory's bounds checks, the layer every device access to guest RAM goes through (virtqueue
// descriptors, DMA, boot information). The input is a sequence of 16-byte records, each one read, write, contains()
// or span() of a guest-controlled (gpa, len) against RAM with holes, adjacent regions and a region at the very top
// of the address space. A shadow copy of RAM and an independent model of "is [gpa, gpa+len) RAM" check every
// answer: nothing outside RAM is touched, overflowing lengths are refused, and what is read is what was written.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "memory/guest_memory.h"

namespace {

using iovmm::GuestMemory;
using iovmm::RamRange;

constexpr uint64_t kTopRegion = ~uint64_t{0} - 0x2000 + 1;  // ends one page below 2^64, so gpa+len can wrap past it

// Small on purpose (every input starts by zeroing it): low RAM, a hole, two adjacent regions (an access may span
// them), RAM above 4 GiB and the top-of-space region.
const std::vector<RamRange>& ranges() {
  static const std::vector<RamRange> kRanges = {
      {0x0, 0x20000},         {0x100000, 0x10000}, {0x110000, 0x10000},
      {0x100000000, 0x10000}, {kTopRegion, 0x1000},
  };
  return kRanges;
}

// Where records aim: edges of regions and holes, plus the extremes of the address space.
constexpr uint64_t kAnchors[] = {0,          0x1F000,     0x20000,     0x100000,   0x110000,
                                 0x120000,   0x100000000, 0x100010000, kTopRegion, kTopRegion + 0x1000,
                                 ~uint64_t{0}, 0x80000000};
constexpr size_t kAnchorCount = sizeof(kAnchors) / sizeof(kAnchors[0]);

// Lengths above this are never RAM (total RAM is smaller), so a refused access is given a tiny buffer instead: any
// byte the implementation copied anyway lands outside it and ASan reports the overflow.
constexpr uint64_t kMaxBuffer = 1024 * 1024;

// Bytes for writes, so that no per-byte loop runs here: this file is built with -fsanitize=fuzzer, which traces
// every comparison and loop edge in it.
const std::vector<uint8_t>& pattern() {
  static const std::vector<uint8_t> bytes = [] {
    std::vector<uint8_t> b(kMaxBuffer + 256);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + i / 251);
    return b;
  }();
  return bytes;
}

struct Record {  // 16 bytes, fixed size so libFuzzer's mutations and crossovers keep their meaning
  uint8_t op;      // bits 0..1: read, write, contains, span; bit 7: len is the raw 64-bit field, else len & 0x3FFFF
  uint8_t anchor;  // % kAnchorCount
  uint8_t fill;    // byte pattern seed for writes
  uint8_t reserved;
  int32_t delta;  // gpa = anchor + delta (wrapping)
  uint64_t len;
};
static_assert(sizeof(Record) == 16);

[[noreturn]] void fail(const char* what, uint64_t gpa, uint64_t len) {
  std::fprintf(stderr, "fuzz_guest_memory: %s (gpa %#llx, len %#llx)\n", what, static_cast<unsigned long long>(gpa),
               static_cast<unsigned long long>(len));
  std::abort();
}

// The model: RAM as merged, non-adjacent intervals [start, end). Different from GuestMemory's region walk on purpose.
struct Interval {
  uint64_t start, end;
};
std::vector<Interval> merged_ram() {
  std::vector<Interval> out;
  for (const auto& r : ranges()) {
    if (!out.empty() && out.back().end == r.gpa) {
      out.back().end = r.gpa + r.size;
    } else {
      out.push_back({r.gpa, r.gpa + r.size});
    }
  }
  return out;
}

bool model_contains(uint64_t gpa, uint64_t len) {
  if (len == 0) return true;  // GuestMemory's contract: an empty access touches nothing and succeeds
  static const std::vector<Interval> kRam = merged_ram();
  return std::any_of(kRam.begin(), kRam.end(),
                     [&](const Interval& i) { return gpa >= i.start && gpa < i.end && len <= i.end - gpa; });
}

bool model_in_one_region(uint64_t gpa, uint64_t len) {
  return std::any_of(ranges().begin(), ranges().end(), [&](const RamRange& r) {
    return gpa >= r.gpa && gpa - r.gpa < r.size && len <= r.size - (gpa - r.gpa);
  });
}

// Shadow RAM: one byte vector per region, indexed like ranges(). Accesses go region chunk by region chunk (memcmp,
// memcpy) so that megabyte-long checks stay cheap; callers have checked the range against the model first.
class Shadow {
 public:
  Shadow() {
    for (const auto& r : ranges()) bytes_.emplace_back(r.size, 0);
  }
  void clear() {
    for (auto& b : bytes_) std::memset(b.data(), 0, b.size());  // not std::fill: a traced byte loop here
  }
  [[nodiscard]] bool equals(uint64_t gpa, const uint8_t* data, uint64_t len) {
    bool same = true;
    walk(gpa, len, [&](uint8_t* shadow, uint64_t done, uint64_t chunk) {
      same = same && std::memcmp(shadow, data + done, chunk) == 0;
    });
    return same;
  }
  void store(uint64_t gpa, const uint8_t* data, uint64_t len) {
    walk(gpa, len, [&](uint8_t* shadow, uint64_t done, uint64_t chunk) { std::memcpy(shadow, data + done, chunk); });
  }
  [[nodiscard]] uint8_t at(uint64_t gpa) {
    uint8_t value = 0;
    walk(gpa, 1, [&](uint8_t* shadow, uint64_t, uint64_t) { value = *shadow; });
    return value;
  }

 private:
  template <typename F>
  void walk(uint64_t gpa, uint64_t len, F&& f) {
    uint64_t done = 0;
    while (done < len) {
      const uint64_t addr = gpa + done;
      size_t i = 0;
      while (i < ranges().size() && !(addr >= ranges()[i].gpa && addr - ranges()[i].gpa < ranges()[i].size)) ++i;
      if (i == ranges().size()) fail("shadow access outside RAM", gpa, len);
      const uint64_t offset = addr - ranges()[i].gpa;
      const uint64_t chunk = std::min(len - done, ranges()[i].size - offset);
      f(bytes_[i].data() + offset, done, chunk);
      done += chunk;
    }
  }

  std::vector<std::vector<uint8_t>> bytes_;
};

struct Fixture {
  GuestMemory memory{ranges()};
  Shadow shadow;

  // Every input starts from zeroed RAM so that a run depends on its input alone.
  void reset() {
    for (const auto& region : memory.regions()) std::memset(region.host, 0, region.size);
    shadow.clear();
  }
};

std::unique_ptr<uint8_t[]> buffer_for(uint64_t len, bool expect_ok, size_t& size) {
  size = expect_ok ? static_cast<size_t>(len) : static_cast<size_t>(std::min<uint64_t>(len, 16));
  return std::unique_ptr<uint8_t[]>(new uint8_t[std::max<size_t>(size, 1)]);
}

void run(Fixture& f, const Record& r) {
  const uint64_t gpa = kAnchors[r.anchor % kAnchorCount] + static_cast<uint64_t>(static_cast<int64_t>(r.delta));
  const uint64_t len = (r.op & 0x80) ? r.len : (r.len & 0x3FFFF);
  const bool expect_ok = model_contains(gpa, len);
  if (expect_ok && len > kMaxBuffer) fail("model says a huge access is RAM", gpa, len);

  switch (r.op & 3) {
    case 0: {  // read: refused exactly when not RAM; on success the bytes are the shadow's
      size_t size = 0;
      auto buffer = buffer_for(len, expect_ok, size);
      std::memset(buffer.get(), 0xA5, std::max<size_t>(size, 1));
      const bool ok = f.memory.read(gpa, buffer.get(), static_cast<size_t>(len));
      if (ok != expect_ok) fail(ok ? "read outside RAM succeeded" : "read of RAM refused", gpa, len);
      if (!ok) {
        static const uint8_t untouched[16] = {0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
                                              0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5};
        if (std::memcmp(buffer.get(), untouched, size) != 0) fail("refused read wrote to the buffer", gpa, len);
        return;
      }
      if (!f.shadow.equals(gpa, buffer.get(), len)) fail("read returned bytes that were not written", gpa, len);
      return;
    }
    case 1: {  // write: refused exactly when not RAM; on success the shadow follows
      size_t size = 0;
      auto buffer = buffer_for(len, expect_ok, size);
      std::memcpy(buffer.get(), pattern().data() + r.fill, size);
      const bool ok = f.memory.write(gpa, buffer.get(), static_cast<size_t>(len));
      if (ok != expect_ok) fail(ok ? "write outside RAM succeeded" : "write to RAM refused", gpa, len);
      if (ok) f.shadow.store(gpa, buffer.get(), len);
      return;
    }
    case 2:
      if (f.memory.contains(gpa, len) != expect_ok) fail("contains() disagrees with the model", gpa, len);
      return;
    case 3: {  // span: non-empty exactly when inside one region, and a view of that region's bytes
      const auto view = f.memory.span(gpa, len);
      const bool expect_view = len > 0 && model_in_one_region(gpa, len);
      if (!view.empty() != expect_view) fail(expect_view ? "span() refused a region" : "span() outside a region", gpa,
                                             len);
      if (!view.empty()) {
        if (view.size() != len) fail("span() has the wrong size", gpa, len);
        // Only the ends: enough to catch a wrong base or size, and cheap for 1 MiB views.
        if (view.front() != f.shadow.at(gpa) || view.back() != f.shadow.at(gpa + len - 1)) {
          fail("span() shows other bytes than were written", gpa, len);
        }
      }
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  fixture.reset();
  for (size_t offset = 0; offset + sizeof(Record) <= size; offset += sizeof(Record)) {
    Record record;
    std::memcpy(&record, data + offset, sizeof(record));
    run(fixture, record);
  }
  return 0;
}
