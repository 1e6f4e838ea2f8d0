// A PIIX3 IDE controller with a disk image in the build tree's test-tmp directory and 1 MiB of guest RAM, driven
// through its register windows the way the bus calls it: port numbers are translated to the controller's regions.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "block/backend.h"
#include "devices/ide/ide_controller.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::ide_test {

constexpr uint16_t kData = 0x1F0, kError = 0x1F1, kFeatures = 0x1F1, kCount = 0x1F2, kLbaLow = 0x1F3,
                   kLbaMid = 0x1F4, kLbaHigh = 0x1F5, kDevice = 0x1F6, kStatus = 0x1F7, kCommand = 0x1F7,
                   kAltStatus = 0x3F6, kControl = 0x3F6;
constexpr uint16_t kSecondaryStatus = 0x177;
// Bus master offsets in BAR4.
constexpr unsigned kBmCommand = 0, kBmStatus = 2, kBmPrd = 4;

constexpr uint8_t kBsy = 0x80, kDrdy = 0x40, kDsc = 0x10, kDrq = 0x08, kErr = 0x01;
constexpr uint8_t kAbrt = 0x04, kIdnf = 0x10, kUnc = 0x40;
constexpr uint8_t kNien = 0x02, kSrst = 0x04, kHob = 0x80;
constexpr uint8_t kLbaMode = 0xE0;  // device register: LBA, device 0, obsolete bits

constexpr unsigned kSector = 512;

// A byte of the pattern every image starts with: different in every sector and every position.
inline uint8_t image_byte(uint64_t lba, unsigned offset) {
  return static_cast<uint8_t>(lba * 37 + offset * 3 + (offset >> 8) + (lba >> 8));
}

class FakeIrq final : public io::IrqLine {
 public:
  void set_level(bool asserted) override {
    if (asserted && !level) ++raised;
    level = asserted;
  }
  bool level = false;
  unsigned raised = 0;
};

class IdeHarness {
 public:
  explicit IdeHarness(const std::string& test, uint64_t sectors = 1024, bool readonly = false)
      : memory_({RamRange{0, kRamSize}}) {
    const auto dir = std::filesystem::path(IOVMM_TEST_TMPDIR) / "ide";
    std::filesystem::create_directories(dir);
    path = (dir / (test + ".img")).string();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      std::vector<char> bytes(sectors * kSector);
      for (uint64_t s = 0; s < sectors; ++s) {
        for (unsigned i = 0; i < kSector; ++i) bytes[s * kSector + i] = static_cast<char>(image_byte(s, i));
      }
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    DeviceContext context;
    context.memory = &memory_;
    context.isa_irq = [this](uint32_t gsi) {
      auto line = std::make_shared<FakeIrq>();
      irqs_[gsi] = line;
      return line;
    };
    ide = std::make_shared<IdeController>("ide", block::Backend::open({.path = path, .readonly = readonly}),
                                          context);
  }
  ~IdeHarness() { std::filesystem::remove(path); }

  static constexpr uint64_t kRamSize = 1 << 20;

  GuestMemory& memory() { return memory_; }
  FakeIrq& irq14() { return *irqs_.at(14); }
  FakeIrq& irq15() { return *irqs_.at(15); }

  uint64_t in(uint16_t port, unsigned size) {
    auto [region, offset] = locate(port);
    std::lock_guard lock(ide->mutex());
    return ide->read(region, offset, size);
  }
  void out(uint16_t port, unsigned size, uint64_t value) {
    auto [region, offset] = locate(port);
    std::lock_guard lock(ide->mutex());
    ide->write(region, offset, size, value);
  }
  uint8_t inb(uint16_t port) { return static_cast<uint8_t>(in(port, 1)); }
  uint16_t inw(uint16_t port) { return static_cast<uint16_t>(in(port, 2)); }
  uint32_t inl(uint16_t port) { return static_cast<uint32_t>(in(port, 4)); }
  void outb(uint16_t port, uint8_t value) { out(port, 1, value); }
  void outw(uint16_t port, uint16_t value) { out(port, 2, value); }
  void outl(uint16_t port, uint32_t value) { out(port, 4, value); }

  uint64_t bm_in(unsigned offset, unsigned size = 1) {
    std::lock_guard lock(ide->mutex());
    return ide->read(IdeController::kBusMaster, offset, size);
  }
  void bm_out(unsigned offset, uint64_t value, unsigned size = 1) {
    std::lock_guard lock(ide->mutex());
    ide->write(IdeController::kBusMaster, offset, size, value);
  }
  uint32_t config_read(unsigned offset, unsigned size) {
    std::lock_guard lock(ide->mutex());
    return ide->config_read(offset, size);
  }
  void config_write(unsigned offset, unsigned size, uint32_t value) {
    std::lock_guard lock(ide->mutex());
    ide->config_write(offset, size, value);
  }

  // Task file for a 28-bit LBA command, then the command.
  void lba28(uint32_t lba, uint8_t count) {
    outb(kCount, count);
    outb(kLbaLow, static_cast<uint8_t>(lba));
    outb(kLbaMid, static_cast<uint8_t>(lba >> 8));
    outb(kLbaHigh, static_cast<uint8_t>(lba >> 16));
    outb(kDevice, static_cast<uint8_t>(kLbaMode | ((lba >> 24) & 0x0F)));
  }
  // Task file for a 48-bit command: high-order bytes first, as drivers write them.
  void lba48(uint64_t lba, uint16_t count) {
    outb(kCount, static_cast<uint8_t>(count >> 8));
    outb(kLbaLow, static_cast<uint8_t>(lba >> 24));
    outb(kLbaMid, static_cast<uint8_t>(lba >> 32));
    outb(kLbaHigh, static_cast<uint8_t>(lba >> 40));
    outb(kCount, static_cast<uint8_t>(count));
    outb(kLbaLow, static_cast<uint8_t>(lba));
    outb(kLbaMid, static_cast<uint8_t>(lba >> 8));
    outb(kLbaHigh, static_cast<uint8_t>(lba >> 16));
    outb(kDevice, kLbaMode);
  }
  void command(uint8_t command) { outb(kCommand, command); }

  // `bytes` from the data port, a word at a time (rep insw).
  std::vector<uint8_t> read_pio(size_t bytes) {
    std::vector<uint8_t> data;
    for (size_t i = 0; i < bytes; i += 2) {
      uint16_t w = inw(kData);
      data.push_back(static_cast<uint8_t>(w));
      data.push_back(static_cast<uint8_t>(w >> 8));
    }
    return data;
  }
  void write_pio(const std::vector<uint8_t>& data) {
    for (size_t i = 0; i + 1 < data.size(); i += 2) outw(kData, static_cast<uint16_t>(data[i] | (data[i + 1] << 8)));
  }

  std::array<uint16_t, 256> identify() {
    command(0xEC);
    std::array<uint16_t, 256> id{};
    EXPECT_EQ(inb(kStatus) & (kBsy | kDrq | kErr), kDrq);
    for (auto& w : id) w = inw(kData);
    return id;
  }

  std::vector<uint8_t> file_bytes() const {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  std::string path;
  std::shared_ptr<IdeController> ide;

 private:
  static std::pair<unsigned, uint64_t> locate(uint16_t port) {
    if (port >= 0x1F0 && port < 0x1F8) return {IdeController::kPrimaryCommand, port - 0x1F0u};
    if (port == 0x3F6) return {IdeController::kPrimaryControl, 0};
    if (port >= 0x170 && port < 0x178) return {IdeController::kSecondaryCommand, port - 0x170u};
    if (port == 0x376) return {IdeController::kSecondaryControl, 0};
    ADD_FAILURE() << "no IDE register at port " << port;
    return {99, 0};
  }

  GuestMemory memory_;
  std::map<uint32_t, std::shared_ptr<FakeIrq>> irqs_;
};

// The image's sectors [lba, lba + count) as the pattern wrote them.
inline std::vector<uint8_t> pattern_sectors(uint64_t lba, unsigned count) {
  std::vector<uint8_t> bytes;
  for (unsigned s = 0; s < count; ++s) {
    for (unsigned i = 0; i < kSector; ++i) bytes.push_back(image_byte(lba + s, i));
  }
  return bytes;
}

// Distinct data for writes.
inline std::vector<uint8_t> fresh_data(size_t size, unsigned seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed * 101 + i * 13 + (i >> 9));
  return bytes;
}

}  // namespace iovmm::devices::ide_test
