// The bus: sorted windows, whole-width checks, all-ones for unmapped reads, counted and rate-limited bad accesses.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "common/error.h"
#include "io/bus.h"

namespace iovmm::io {
namespace {

// Remembers every access; reads return offset-dependent values so tests can see which window answered.
class RecordingDevice : public Device {
 public:
  explicit RecordingDevice(std::string name, uint64_t read_base = 0) : Device(std::move(name)), read_base_(read_base) {}
  uint64_t read(unsigned region, uint64_t offset, unsigned size) override {
    reads.push_back({region, offset, size, 0});
    return read_base_ + offset;
  }
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override {
    writes.push_back({region, offset, size, value});
  }
  struct Access {
    unsigned region;
    uint64_t offset;
    unsigned size;
    uint64_t value;
  };
  std::vector<Access> reads, writes;

 private:
  uint64_t read_base_;
};

Window window(uint64_t base, uint64_t size, std::shared_ptr<Device> device, unsigned region = 0) {
  Window w;
  w.base = base;
  w.size = size;
  w.device = std::move(device);
  w.region = region;
  return w;
}

TEST(Bus, RoutesToTheWindowWithOffsetAndRegion) {
  Bus bus(Space::pio);
  auto a = std::make_shared<RecordingDevice>("a", 0x100);
  auto b = std::make_shared<RecordingDevice>("b", 0x200);
  bus.map(window(0x3f8, 8, a));
  bus.map(window(0x60, 4, b, 3));
  uint64_t value = 0;
  EXPECT_EQ(bus.read(0x3fd, 2, value), AccessResult::ok);
  EXPECT_EQ(value, 0x105u);
  EXPECT_EQ(bus.write(0x62, 2, 0xbeef), AccessResult::ok);
  ASSERT_EQ(b->writes.size(), 1u);
  EXPECT_EQ(b->writes[0].region, 3u);
  EXPECT_EQ(b->writes[0].offset, 2u);
  EXPECT_EQ(b->writes[0].value, 0xbeefu);
}

TEST(Bus, UnmappedReadsAreAllOnesOfTheWidthAndCounted) {
  Bus bus(Space::mmio);
  uint64_t value = 0;
  EXPECT_EQ(bus.read(0x1000, 1, value), AccessResult::unmapped);
  EXPECT_EQ(value, 0xffu);
  EXPECT_EQ(bus.read(0x1000, 4, value), AccessResult::unmapped);
  EXPECT_EQ(value, 0xffffffffu);
  EXPECT_EQ(bus.read(0x1000, 8, value), AccessResult::unmapped);
  EXPECT_EQ(value, ~0ull);
  EXPECT_EQ(bus.write(0x1000, 4, 1), AccessResult::unmapped);
  EXPECT_EQ(bus.unmapped_reads(), 3u);
  EXPECT_EQ(bus.unmapped_writes(), 1u);
}

TEST(Bus, AnAccessRunningPastTheEndIsRefusedWholly) {
  Bus bus(Space::pio);
  auto dev = std::make_shared<RecordingDevice>("dev");
  bus.map(window(0x100, 4, dev));
  uint64_t value = 0;
  EXPECT_EQ(bus.read(0x102, 4, value), AccessResult::crosses_end);
  EXPECT_EQ(value, 0xffffffffu);
  EXPECT_EQ(bus.write(0x103, 2, 0), AccessResult::crosses_end);
  EXPECT_TRUE(dev->reads.empty());
  EXPECT_TRUE(dev->writes.empty());
  EXPECT_EQ(bus.read(0x100, 4, value), AccessResult::ok);  // exactly fitting is fine
}

TEST(Bus, AccessJustBeforeAWindowIsUnmapped) {
  Bus bus(Space::pio);
  auto dev = std::make_shared<RecordingDevice>("dev");
  bus.map(window(0x100, 4, dev));
  uint64_t value = 0;
  EXPECT_EQ(bus.read(0xff, 2, value), AccessResult::unmapped);  // starts outside: not this device's access
  EXPECT_TRUE(dev->reads.empty());
}

TEST(Bus, InvalidWidthsAreRefused) {
  Bus bus(Space::mmio);
  auto dev = std::make_shared<RecordingDevice>("dev");
  bus.map(window(0, 16, dev));
  uint64_t value = 0;
  for (unsigned size : {0u, 3u, 5u, 16u}) EXPECT_EQ(bus.read(0, size, value), AccessResult::bad_size) << size;
  EXPECT_TRUE(dev->reads.empty());
}

TEST(Bus, OverlapsAndEmptyWindowsAreErrorsNamingBoth) {
  Bus bus(Space::mmio);
  auto a = std::make_shared<RecordingDevice>("first");
  auto b = std::make_shared<RecordingDevice>("second");
  bus.map(window(0x1000, 0x100, a));
  try {
    bus.map(window(0x10ff, 1, b));
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("first"), std::string::npos);
    EXPECT_NE(msg.find("second"), std::string::npos);
  }
  EXPECT_THROW(bus.map(window(0x2000, 0, b)), Error);
  EXPECT_THROW(bus.map(window(~0ull - 1, 4, b)), Error);
  bus.map(window(0x1100, 1, b));  // adjacent is fine
}

TEST(Bus, UnmapAndMoveKeepCounts) {
  Bus bus(Space::mmio);
  auto dev = std::make_shared<RecordingDevice>("dev");
  bus.map(window(0x1000, 0x10, dev, 1));
  uint64_t value = 0;
  EXPECT_EQ(bus.read(0x1004, 4, value), AccessResult::ok);
  bus.move(*dev, 1, 0x8000);
  EXPECT_EQ(bus.read(0x1004, 4, value), AccessResult::unmapped);
  EXPECT_EQ(bus.read(0x8004, 4, value), AccessResult::ok);
  auto windows = bus.windows();
  ASSERT_EQ(windows.size(), 1u);
  auto counts = windows[0].counts->snapshot();
  EXPECT_EQ((counts[AccessCounts::Key{4, 4, Direction::read, Path::exit}]), 2u);
  EXPECT_TRUE(bus.unmap(*dev, 1));
  EXPECT_FALSE(bus.unmap(*dev, 1));
}

TEST(Bus, WindowsChangeWhileOtherThreadsAccess) {
  Bus bus(Space::mmio);
  auto stable = std::make_shared<RecordingDevice>("stable");
  bus.map(window(0x0, 0x10, stable));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t value;
    while (!done) EXPECT_EQ(bus.read(0x4, 4, value), AccessResult::ok);
  });
  for (int i = 0; i < 2000; ++i) {
    auto temp = std::make_shared<RecordingDevice>("temp");
    bus.map(window(0x100, 0x10, temp));
    bus.unmap(*temp, 0);
  }
  done = true;
  reader.join();
}

}  // namespace
}  // namespace iovmm::io
