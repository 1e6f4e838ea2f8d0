// Fuzz target: the PIIX3 IDE function (devices/ide) driven through its windows as the bus drives it — the legacy
// command and control blocks (regions 6-9), the bus master (BAR4) and configuration space — with a 64-sector disk
// image on a memfd (opened through /proc/self/fd/N, reset per input) and 256 KiB of guest RAM whose contents are the
// input's tail, so PRD tables and DMA buffers are the fuzzer's. The input is a record count, then 4-byte records
// (operation, three argument bytes): register reads and writes, rep insw/outsw bursts of up to 256 words, bus master
// programming, PRD entries stored into RAM, canned commands with an LBA (28- and 48-bit), software resets, and the
// image shrinking under the open disk. Checks: nothing crashes, throws or hangs (every loop is bounded by the
// record); the secondary channel, which has no device, reads 0 and never interrupts; the IRQ line the device drives
// matches the channel's own idea of it; the image never grows past the disk's capacity; ASan/UBSan see no access
// outside guest RAM, the image or the device's buffers.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "block/backend.h"
#include "common/log.h"
#include "devices/ide/ide_controller.h"
#include "memory/guest_memory.h"

namespace {

using iovmm::GuestMemory;
using iovmm::devices::IdeController;

constexpr uint64_t kSectors = 64;
constexpr uint64_t kImageBytes = kSectors * 512;
constexpr uint64_t kRamBytes = 256 * 1024;
constexpr size_t kMaxRecords = 512;

[[noreturn]] void fail(const char* what, uint64_t a = 0) {
  std::fprintf(stderr, "fuzz_ide: %s (%#llx)\n", what, static_cast<unsigned long long>(a));
  std::abort();
}

int image_fd() {
  static const int fd = [] {
    const int f = ::memfd_create("fuzz-ide", MFD_CLOEXEC);
    if (f < 0) fail("memfd_create");
    return f;
  }();
  // A recognisable image each time, so a run depends on its input alone.
  static const std::vector<uint8_t> pattern = [] {
    std::vector<uint8_t> bytes(kImageBytes);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + (i >> 9));
    return bytes;
  }();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pattern.data(), pattern.size(), 0) != static_cast<ssize_t>(kImageBytes)) {
    fail("preparing the image");
  }
  return fd;
}

class CheckedIrq final : public iovmm::io::IrqLine {
 public:
  explicit CheckedIrq(bool may_rise) : may_rise_(may_rise) {}
  void set_level(bool asserted) override {
    if (asserted && !may_rise_) fail("the secondary channel (no device) raised IRQ 15");
    level = asserted;
  }
  bool level = false;

 private:
  bool may_rise_;
};

// Commands worth reaching often: the data commands in all their forms and the rest of the command set.
constexpr std::array<uint8_t, 32> kCommands = {0x20, 0x21, 0x24, 0x29, 0x30, 0x31, 0x34, 0x39, 0xC4, 0xC5, 0xC6,
                                               0xC8, 0xC9, 0x25, 0xCA, 0xCB, 0x35, 0x40, 0x41, 0x42, 0xE7, 0xEA,
                                               0xEC, 0xEF, 0x91, 0xE0, 0xE1, 0xE5, 0x90, 0x00, 0xA1, 0xFF};

struct Record {
  uint8_t op, a, b, c;
};

class Harness {
 public:
  Harness(GuestMemory& memory, const std::string& image) : memory_(memory) {
    iovmm::devices::DeviceContext context;
    context.memory = &memory_;
    context.isa_irq = [this](uint32_t gsi) { return gsi == 14 ? irq14_ : irq15_; };
    ide_ = std::make_shared<IdeController>("fuzz-ide", iovmm::block::Backend::open({.path = image}), context);
    // I/O decode on and BAR4 somewhere, as firmware would leave it (the windows decode regardless).
    config_write(0x20, 4, 0xC000);
    config_write(0x04, 2, 0x0005);
  }

  void run(const Record& r) {
    const bool secondary = r.a & 0x80;
    const unsigned command_block = secondary ? IdeController::kSecondaryCommand : IdeController::kPrimaryCommand;
    const unsigned control_block = secondary ? IdeController::kSecondaryControl : IdeController::kPrimaryControl;
    switch (r.op % 16) {
      case 0:
        write(command_block, r.a & 7, 1, r.b);
        break;
      case 1: {
        uint64_t value = read(command_block, r.a & 7, 1);
        if (secondary && (r.a & 7) != 0 && value != 0) fail("the empty secondary channel read non-zero", value);
        break;
      }
      case 2: {  // rep insw / insl
        unsigned size = (r.a & 1) ? 4 : 2;
        for (unsigned i = 0; i <= r.b; ++i) (void)read(command_block, 0, size);
        break;
      }
      case 3: {  // rep outsw / outsl
        unsigned size = (r.a & 1) ? 4 : 2;
        for (unsigned i = 0; i <= r.b; ++i) write(command_block, 0, size, r.c * 0x01010101u + i);
        break;
      }
      case 4:
        write(control_block, 0, 1, r.b);
        break;
      case 5:
        (void)read(control_block, 0, 1);
        break;
      case 6:
        write(IdeController::kBusMaster, r.a & 15, 1, r.b);
        break;
      case 7: {  // PRD table address, mostly inside RAM
        uint32_t address = (r.a & 0x40) ? (uint32_t{r.b} << 24 | uint32_t{r.c} << 16)
                                        : (uint32_t{r.b} << 10 | uint32_t{r.c} << 2 | (r.a & 3));
        write(IdeController::kBusMaster, (r.a & 8) + 4, 4, address);
        break;
      }
      case 8: {
        unsigned size = 1u << (r.b % 3);
        unsigned offset = r.a & 15;
        if (offset + size <= IdeController::kBusMasterSize) (void)read(IdeController::kBusMaster, offset, size);
        break;
      }
      case 9: {  // a canned command with a 28-bit LBA
        write(command_block, 2, 1, r.c);
        write(command_block, 3, 1, r.b);
        write(command_block, 4, 1, 0);
        write(command_block, 5, 1, 0);
        write(command_block, 6, 1, 0xA0 | (r.a & 0x50));
        write(command_block, 7, 1, kCommands[r.a % kCommands.size()]);
        break;
      }
      case 10: {  // a PRD entry into RAM
        uint64_t at = (static_cast<uint64_t>(r.a & 0x7F) << 9 | (r.b & 0xF8)) % kRamBytes;
        std::array<uint32_t, 2> entry = {uint32_t{r.c} << 10 | (r.b & 1),
                                         (uint32_t{r.b} << 5) | ((r.a & 1) ? 0x80000000u : 0)};
        (void)memory_.write_obj(at, entry);
        break;
      }
      case 11: {  // the image changes size under the disk
        if (::ftruncate(image_fd_, static_cast<off_t>(r.b % (kSectors + 1) * 512)) != 0) fail("ftruncate");  // never longer
        break;
      }
      case 12:
        config_write(0x40 + (r.a & 0x3F), 1u << (r.b % 3), r.c * 0x01010101u);
        break;
      case 13: {  // any width at any offset the bus would let through
        unsigned size = 1u << (r.b % 3);
        unsigned offset = r.a & 7;
        if (offset + size > 8) break;
        if (r.c & 1) {
          write(command_block, offset, size, r.c * 0x01010101u);
        } else {
          (void)read(command_block, offset, size);
        }
        break;
      }
      case 14: {  // a 48-bit command: high-order bytes first
        for (unsigned reg = 2; reg <= 5; ++reg) write(command_block, reg, 1, reg == 2 ? r.c >> 4 : 0);
        write(command_block, 2, 1, r.c);
        write(command_block, 3, 1, r.b);
        write(command_block, 6, 1, 0xE0);
        write(command_block, 7, 1, kCommands[r.a % 17]);  // the read/write and DMA ones
        break;
      }
      default:
        (void)read(command_block, 7, 1);
        break;
    }
    if (ide_->channel(0).irq_level() != irq14_->level) fail("IRQ 14 differs from the primary's interrupt state");
  }

  void set_image_fd(int fd) { image_fd_ = fd; }

 private:
  uint64_t read(unsigned region, uint64_t offset, unsigned size) {
    std::lock_guard lock(ide_->mutex());
    return ide_->read(region, offset, size);
  }
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
    std::lock_guard lock(ide_->mutex());
    ide_->write(region, offset, size, value);
  }
  void config_write(unsigned offset, unsigned size, uint32_t value) {
    std::lock_guard lock(ide_->mutex());
    ide_->config_write(offset, size, value);
  }

  GuestMemory& memory_;
  std::shared_ptr<CheckedIrq> irq14_ = std::make_shared<CheckedIrq>(true);
  std::shared_ptr<CheckedIrq> irq15_ = std::make_shared<CheckedIrq>(false);
  std::shared_ptr<IdeController> ide_;
  int image_fd_ = -1;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Guest mistakes are logged as warnings (rate-limited); the fuzzer makes them by the million.
  iovmm::log::set_level(iovmm::log::Level::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static GuestMemory memory({iovmm::RamRange{0, kRamBytes}});
  if (size < 2) return 0;
  const size_t records = std::min<size_t>({(data[0] | data[1] << 8) % (kMaxRecords + 1), (size - 2) / sizeof(Record)});
  const uint8_t* tail = data + 2 + records * sizeof(Record);
  const size_t tail_size = size - 2 - records * sizeof(Record);

  static const std::vector<uint8_t> zeros(kRamBytes);
  (void)memory.write(0, zeros.data(), zeros.size());
  (void)memory.write(0, tail, std::min<size_t>(tail_size, kRamBytes));

  const int fd = image_fd();
  {
    Harness harness(memory, "/proc/self/fd/" + std::to_string(fd));
    harness.set_image_fd(fd);
    for (size_t i = 0; i < records; ++i) {
      Record record;
      std::memcpy(&record, data + 2 + i * sizeof(Record), sizeof(record));
      harness.run(record);
    }
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("fstat");
  if (static_cast<uint64_t>(st.st_size) > kImageBytes) fail("the disk wrote past its capacity", st.st_size);
  return 0;
}
