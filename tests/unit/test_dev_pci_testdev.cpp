// pci-testdev through the buses as the VMM drives it: BARs programmed through configuration space and mapped by
// PciBarMapper, header bytes compared with a reference written from QEMU 7.2's hw/misc/pci-testdev.c, the sequence
// kvm-unit-tests' pci_testdev_one runs, and doorbells through a fake DoorbellHost that stands in for KVM: a write
// matching an active doorbell becomes a pending signal instead of reaching the device, as an ioeventfd does.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci_testdev.h"
#include "io/bus.h"
#include "io/doorbell.h"

namespace iovmm::devices {
namespace {

constexpr uint64_t kMmioBase = 0xC000'0000;
constexpr uint64_t kPioBase = 0xC000;

// What QEMU 7.2 shows for each test, read off its realize function: the device-wide number, the offset
// (IOTEST_MEMSIZE or IOTEST_IOSIZE + number), the data byte and the name. Every test has width 1.
struct QemuTest {
  unsigned bar;
  uint8_t selector;  // what the guest writes to `test` on that BAR
  uint8_t number;    // what `test` reads back
  uint32_t offset;
  uint8_t data;
  std::string_view name;
  bool eventfd;
  bool datamatch;  // only writes of `data` count
};
constexpr QemuTest kQemuTests[] = {
    {0, 0, 0, 0x800, 0xFA, "mmio-no-eventfd", false, true},
    {0, 1, 1, 0x801, 0xCE, "mmio-wildcard-eventfd", true, false},
    {0, 2, 2, 0x802, 0xFA, "mmio-datamatch-eventfd", true, true},
    {1, 0, 3, 0x83, 0xFA, "portio-no-eventfd", false, true},
    {1, 1, 4, 0x84, 0xCE, "portio-wildcard-eventfd", true, false},
    {1, 2, 5, 0x85, 0xFA, "portio-datamatch-eventfd", true, true},
};

// QEMU's header for `test`, byte by byte (count 0), followed by zeros up to `length`.
std::vector<uint8_t> qemu_header(const QemuTest& test, size_t length) {
  std::vector<uint8_t> bytes(length, 0);
  bytes[0] = test.number;
  bytes[1] = 1;
  for (unsigned i = 0; i < 4; ++i) bytes[4 + i] = static_cast<uint8_t>(test.offset >> (8 * i));
  bytes[8] = test.data;
  for (size_t i = 0; i < test.name.size(); ++i) bytes[0x10 + i] = static_cast<uint8_t>(test.name[i]);
  return bytes;
}

// Stands in for the dispatch layer and KVM. Records every request; `kvm_write` plays KVM's part for a guest write.
class FakeDoorbellHost : public io::DoorbellHost {
 public:
  struct Doorbell {
    io::Device* device;
    unsigned region;
    uint64_t offset;
    unsigned size;
    std::optional<uint64_t> datamatch;
    bool active = true;
    uint64_t pending = 0;
  };

  int add_doorbell(io::Device& device, unsigned region, uint64_t offset, unsigned size,
                   std::optional<uint64_t> datamatch, io::DoorbellDelivery delivery) override {
    EXPECT_EQ(delivery, io::DoorbellDelivery::on_demand);  // nothing wakes per write: the count is taken when read
    doorbells.push_back(Doorbell{&device, region, offset, size, datamatch});
    return static_cast<int>(doorbells.size() - 1);
  }
  void remove_doorbell(int handle) override {
    auto& doorbell = doorbells.at(static_cast<size_t>(handle));
    EXPECT_TRUE(doorbell.active) << "doorbell " << handle << " removed twice";
    doorbell.active = false;
    doorbell.pending = 0;  // "signals not yet delivered are dropped"
    removed.push_back(handle);
  }
  uint64_t take_pending(int handle) override {
    auto& doorbell = doorbells.at(static_cast<size_t>(handle));
    EXPECT_TRUE(doorbell.active) << "take_pending on removed doorbell " << handle;
    ++take_pending_calls;
    return std::exchange(doorbell.pending, 0);
  }

  // KVM's ioeventfd match (virt/kvm/eventfd.c): same address, same length unless the doorbell's is 0 (any), and
  // the same value when it has a datamatch. True when the write became a signal and does not exit.
  bool kvm_write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
    for (auto& doorbell : doorbells) {
      if (!doorbell.active || doorbell.region != region || doorbell.offset != offset) continue;
      if (doorbell.size != 0 && doorbell.size != size) continue;
      if (doorbell.datamatch && *doorbell.datamatch != value) continue;
      ++doorbell.pending;
      return true;
    }
    return false;
  }
  [[nodiscard]] std::vector<const Doorbell*> active() const {
    std::vector<const Doorbell*> result;
    for (const auto& doorbell : doorbells)
      if (doorbell.active) result.push_back(&doorbell);
    return result;
  }

  std::vector<Doorbell> doorbells;
  std::vector<int> removed;
  int take_pending_calls = 0;
};

class DevPciTestdev : public ::testing::Test {
 protected:
  DevPciTestdev() { attach(std::make_shared<PciTestdev>("pci-testdev")); }

  // Maps the device's BARs the way firmware and the machine do: program them in configuration space, enable
  // decoding, and let PciBarMapper put the windows on the buses.
  void attach(std::shared_ptr<PciTestdev> device) {
    if (testdev_) {
      std::lock_guard lock(testdev_->mutex());
      testdev_->config_write(pci_config::kCommand, 2, 0);  // unmaps the old device's windows
    }
    testdev_ = std::move(device);
    testdev_->set_bar_observer(mapper_.observer());
    std::lock_guard lock(testdev_->mutex());
    testdev_->config_write(pci_config::kBar0, 4, static_cast<uint32_t>(kMmioBase));
    testdev_->config_write(pci_config::kBar0 + 4, 4, static_cast<uint32_t>(kPioBase));
    testdev_->config_write(pci_config::kCommand, 2, pci_config::kCommandIo | pci_config::kCommandMemory);
  }
  uint32_t config(unsigned offset, unsigned size) {
    std::lock_guard lock(testdev_->mutex());
    return testdev_->config_read(offset, size);
  }
  io::Bus& bus(unsigned bar) { return bar == PciTestdev::kMmioBar ? mmio_ : pio_; }
  static uint64_t base(unsigned bar) { return bar == PciTestdev::kMmioBar ? kMmioBase : kPioBase; }

  uint64_t read(unsigned bar, uint64_t offset, unsigned size) {
    uint64_t value = 0;
    EXPECT_EQ(bus(bar).read(base(bar) + offset, size, value), io::AccessResult::ok);
    return value;
  }
  // A guest write: taken by KVM when it matches an active doorbell, otherwise an exit to the bus.
  void write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
    if (host_.kvm_write(bar, offset, size, value)) return;
    EXPECT_EQ(bus(bar).write(base(bar) + offset, size, value), io::AccessResult::ok);
  }
  void select(unsigned bar, uint8_t selector) { write(bar, PciTestdev::kTestField, 1, selector); }
  void use_host() { testdev_->set_doorbell_host(&host_); }

  // kvm-unit-tests' pci_testdev_one, step by step; returns the count it reads at the end.
  uint32_t run_pci_testdev_one(unsigned bar, uint8_t selector) {
    select(bar, selector);
    EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 0u);
    auto width = static_cast<unsigned>(read(bar, PciTestdev::kWidthField, 1));
    EXPECT_TRUE(width == 1 || width == 2 || width == 4) << width;
    uint64_t data = read(bar, PciTestdev::kDataField, 4);
    uint64_t offset = read(bar, PciTestdev::kOffsetField, 4);
    for (int i = 0; i < 16; ++i) write(bar, offset, width, data);
    return static_cast<uint32_t>(read(bar, PciTestdev::kCountField, 4));
  }

  FakeDoorbellHost host_;
  io::Bus pio_{io::Space::pio};
  io::Bus mmio_{io::Space::mmio};
  PciBarMapper mapper_{pio_, mmio_};
  std::shared_ptr<PciTestdev> testdev_;
};

TEST_F(DevPciTestdev, IdentityMatchesQemu) {
  EXPECT_EQ(config(pci_config::kVendorId, 2), 0x1b36u);
  EXPECT_EQ(config(pci_config::kDeviceId, 2), 0x0005u);
  EXPECT_EQ(config(pci_config::kRevision, 1), 0x00u);
  // QEMU writes PCI_CLASS_OTHERS (0xff) as the 16-bit class: subclass 0xff, base class 0x00.
  EXPECT_EQ(config(pci_config::kClassCode, 1), 0x00u);
  EXPECT_EQ(config(pci_config::kClassCode + 1, 1), 0xffu);
  EXPECT_EQ(config(pci_config::kClassCode + 2, 1), 0x00u);
  EXPECT_EQ(config(pci_config::kHeaderType, 1), 0x00u);
  EXPECT_EQ(config(pci_config::kSubsystemVendorId, 2), 0x1af4u);
  EXPECT_EQ(config(pci_config::kSubsystemId, 2), 0x1100u);
  EXPECT_EQ(config(pci_config::kInterruptPin, 1), 0u);
}

TEST_F(DevPciTestdev, BarsAreFourKibMemoryAndTwoHundredFiftySixBytesOfIo) {
  ASSERT_EQ(testdev_->bars().size(), 2u);
  {
    std::lock_guard lock(testdev_->mutex());
    testdev_->config_write(pci_config::kCommand, 2, 0);
    testdev_->config_write(pci_config::kBar0, 4, 0xFFFFFFFF);
    testdev_->config_write(pci_config::kBar0 + 4, 4, 0xFFFFFFFF);
    testdev_->config_write(pci_config::kBar0 + 8, 4, 0xFFFFFFFF);
  }
  EXPECT_EQ(config(pci_config::kBar0, 4), 0xFFFFF000u);      // 4 KiB, 32-bit, not prefetchable
  EXPECT_EQ(config(pci_config::kBar0 + 4, 4), 0xFFFFFF01u);  // 256 bytes of I/O
  EXPECT_EQ(config(pci_config::kBar0 + 8, 4), 0u);           // no BAR2 (QEMU's membar is off by default)

  attach(std::make_shared<PciTestdev>("pci-testdev"));
  auto mmio = mmio_.find_window(*testdev_, PciTestdev::kMmioBar);
  auto pio = pio_.find_window(*testdev_, PciTestdev::kPioBar);
  ASSERT_TRUE(mmio && pio);
  EXPECT_EQ(mmio->base, kMmioBase);
  EXPECT_EQ(mmio->size, 0x1000u);
  EXPECT_EQ(pio->base, kPioBase);
  EXPECT_EQ(pio->size, 0x100u);
}

TEST_F(DevPciTestdev, HeaderOfEveryTestMatchesQemuByteByByteAndAsDwords) {
  for (const auto& test : kQemuTests) {
    SCOPED_TRACE(test.name);
    select(test.bar, test.selector);
    // Through both BARs: QEMU keeps one selected test per device and both BARs read its header.
    for (unsigned bar : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
      auto expected = qemu_header(test, 0x100);
      for (uint64_t offset = 0; offset < 0x100; ++offset) {
        if (offset == test.offset) continue;  // reads 0 as well; checked below without disturbing anything
        ASSERT_EQ(read(bar, offset, 1), expected[offset]) << "bar " << bar << " byte " << offset;
      }
      for (uint64_t offset = 0; offset < 0x40; offset += 4) {
        uint32_t dword = expected[offset] | expected[offset + 1] << 8 | expected[offset + 2] << 16 |
                         uint32_t{expected[offset + 3]} << 24;
        ASSERT_EQ(read(bar, offset, 4), dword) << "bar " << bar << " dword " << offset;
      }
      EXPECT_EQ(read(bar, 0, 8), 0x0000'0000'0000'0100ull | test.number | uint64_t{test.offset} << 32);
    }
    EXPECT_EQ(read(PciTestdev::kMmioBar, test.offset, 1), 0u);  // the test port reads 0 (past the name)
    EXPECT_EQ(read(PciTestdev::kMmioBar, 0xFFC, 4), 0u);        // so does the end of the BAR
  }
}

TEST_F(DevPciTestdev, NothingSelectedReadsZeroEverywhere) {
  for (unsigned bar : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
    for (uint64_t offset = 0; offset < 0x100; offset += 4) EXPECT_EQ(read(bar, offset, 4), 0u) << offset;
  }
}

TEST_F(DevPciTestdev, OutOfRangeSelectorDeselects) {
  use_host();
  select(PciTestdev::kMmioBar, 1);
  ASSERT_EQ(host_.active().size(), 1u);
  for (unsigned selector : {3u, 4u, 0x80u, 0xFFu}) {
    select(PciTestdev::kMmioBar, 1);
    select(PciTestdev::kPioBar, static_cast<uint8_t>(selector));
    EXPECT_FALSE(testdev_->selected_test().has_value()) << selector;
    EXPECT_TRUE(host_.active().empty()) << "the previous test's doorbell stays registered";
    // kvm-unit-tests' vmexit enumerates until width is not 1, 2 or 4: everything reads 0.
    EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kWidthField, 1), 0u);
    EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kNameField, 1), 0u);
    // Writes where a test used to listen count for nothing.
    write(PciTestdev::kMmioBar, 0x801, 1, 0xCE);
    EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 0u);
  }
}

TEST_F(DevPciTestdev, KvmUnitTestsSequencePassesWithoutDoorbells) {
  // No host: every write exits and is counted by write().
  for (const auto& test : kQemuTests) {
    SCOPED_TRACE(test.name);
    EXPECT_EQ(run_pci_testdev_one(test.bar, test.selector), 16u);
  }
  // The fourth selector on each BAR ends pci_testdev_all: count 0 and width 0.
  for (unsigned bar : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
    select(bar, 3);
    EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 0u);
    EXPECT_EQ(read(bar, PciTestdev::kWidthField, 1), 0u);
  }
}

TEST_F(DevPciTestdev, KvmUnitTestsSequenceCountsEventfdWritesThroughPendingSignals) {
  use_host();
  for (const auto& test : kQemuTests) {
    SCOPED_TRACE(test.name);
    int calls_before = host_.take_pending_calls;
    EXPECT_EQ(run_pci_testdev_one(test.bar, test.selector), 16u);
    if (test.eventfd) {
      // None of the 16 writes reached the device: KVM took them all, and the count read took them from KVM.
      EXPECT_GT(host_.take_pending_calls, calls_before);
      ASSERT_EQ(host_.active().size(), 1u);
      EXPECT_EQ(host_.active()[0]->pending, 0u);
    } else {
      EXPECT_TRUE(host_.active().empty());
    }
  }
}

TEST_F(DevPciTestdev, SelectingRegistersTheTestsDoorbellAndTheNextSelectionRemovesIt) {
  use_host();
  EXPECT_TRUE(host_.doorbells.empty());
  for (const auto& test : kQemuTests) {
    SCOPED_TRACE(test.name);
    size_t added_before = host_.doorbells.size();
    size_t removed_before = host_.removed.size();
    bool previous_had_doorbell = !host_.active().empty();
    select(test.bar, test.selector);
    EXPECT_EQ(host_.removed.size(), removed_before + (previous_had_doorbell ? 1 : 0));
    if (!test.eventfd) {
      EXPECT_EQ(host_.doorbells.size(), added_before);
      EXPECT_TRUE(host_.active().empty());
      continue;
    }
    ASSERT_EQ(host_.doorbells.size(), added_before + 1);
    const auto& doorbell = host_.doorbells.back();
    EXPECT_EQ(doorbell.device, testdev_.get());
    EXPECT_EQ(doorbell.region, test.bar);
    EXPECT_EQ(doorbell.offset, test.offset);
    EXPECT_EQ(doorbell.size, 1u);
    if (test.datamatch) {
      EXPECT_EQ(doorbell.datamatch, std::optional<uint64_t>(0xFA));
    } else {
      EXPECT_FALSE(doorbell.datamatch.has_value());
    }
  }
  // Selecting the same test again re-registers it (QEMU's stop then start) and restarts its count.
  write(PciTestdev::kPioBar, 0x85, 1, 0xFA);
  EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kCountField, 4), 1u);
  size_t added_before = host_.doorbells.size();
  select(PciTestdev::kPioBar, 2);
  EXPECT_EQ(host_.doorbells.size(), added_before + 1);
  EXPECT_EQ(host_.active().size(), 1u);
  EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kCountField, 4), 0u);
}

TEST_F(DevPciTestdev, DeliveredDoorbellsAndPendingSignalsBothCount) {
  use_host();
  select(PciTestdev::kMmioBar, 1);
  {
    // The event loop delivering 5 signals, with the device lock held as the host promises.
    std::lock_guard lock(testdev_->mutex());
    testdev_->doorbell(PciTestdev::kMmioBar, 0x801, 1, 0xCE, 5);
  }
  write(PciTestdev::kMmioBar, 0x801, 1, 0x00);  // wildcard: any byte; KVM takes it
  write(PciTestdev::kMmioBar, 0x801, 1, 0x17);
  write(PciTestdev::kMmioBar, 0x801, 2, 0x17);  // wrong length for KVM: exits, its low byte counts as in QEMU
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 8u);
  // Byte reads of count take pending signals too (QEMU's guest reads it any width).
  write(PciTestdev::kMmioBar, 0x801, 1, 0x00);
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 1), 9u);
}

TEST_F(DevPciTestdev, DeliveryForARemovedDoorbellDoesNotCount) {
  use_host();
  select(PciTestdev::kPioBar, 1);
  select(PciTestdev::kPioBar, 2);
  std::lock_guard lock(testdev_->mutex());
  testdev_->doorbell(PciTestdev::kPioBar, 0x84, 1, 0xCE, 3);  // late delivery for wildcard
  testdev_->doorbell(PciTestdev::kMmioBar, 0x85, 1, 0xFA, 3);  // wrong BAR
  testdev_->doorbell(PciTestdev::kPioBar, 0x85, 1, 0xCE, 3);   // datamatch test, wrong value
  EXPECT_EQ(testdev_->delivered_count(), 0u);
  testdev_->doorbell(PciTestdev::kPioBar, 0x85, 1, 0xFA, 3);
  EXPECT_EQ(testdev_->delivered_count(), 3u);
}

TEST_F(DevPciTestdev, OnlyMatchingWritesCountForDatamatchTestsAsInQemu) {
  for (unsigned bar : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
    for (uint8_t selector : {uint8_t{0}, uint8_t{2}}) {  // no-eventfd is a datamatch test in QEMU too
      SCOPED_TRACE(testing::Message() << "bar " << bar << " test " << int{selector});
      const QemuTest& test = kQemuTests[bar * 3 + selector];
      for (bool with_host : {false, true}) {
        testdev_->set_doorbell_host(with_host ? &host_ : nullptr);
        select(bar, selector);
        write(bar, test.offset, 1, 0xCE);
        write(bar, test.offset, 1, 0x00);
        write(bar, test.offset, 1, 0xFB);
        EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 0u);
        write(bar, test.offset, 1, 0xFA);
        EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 1u);
        // Wider writes exit (KVM's doorbell is one byte) and QEMU splits them: the byte at the offset decides.
        write(bar, test.offset, 2, 0xCEFA);
        write(bar, test.offset - 1, 2, 0xFA00);
        write(bar, test.offset, 2, 0xFACE);
        EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 3u);
        write(bar, test.offset + 1, 1, 0xFA);  // the neighbouring test's port
        EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 3u);
      }
    }
  }
}

TEST_F(DevPciTestdev, WildcardTestsCountAnyByte) {
  for (unsigned bar : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
    const QemuTest& test = kQemuTests[bar * 3 + 1];
    select(bar, 1);
    for (uint64_t value : {0x00u, 0xCEu, 0xFAu, 0x12u}) write(bar, test.offset, 1, value);
    write(bar, test.offset, 4, 0x12345678);
    EXPECT_EQ(read(bar, PciTestdev::kCountField, 4), 5u);
  }
}

TEST_F(DevPciTestdev, AWriteAtTheSelectedOffsetCountsThroughEitherBarAsInQemu) {
  // QEMU compares the write's offset with the selected test's whatever BAR it came through.
  select(PciTestdev::kPioBar, 0);  // portio-no-eventfd at 0x83
  write(PciTestdev::kMmioBar, 0x83, 1, 0xFA);
  EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kCountField, 4), 1u);
  // And a selector write on the memory BAR picks a memory test, deselecting the I/O one.
  select(PciTestdev::kMmioBar, 0);
  EXPECT_EQ(testdev_->selected_test(), std::optional<unsigned>(0));
  EXPECT_EQ(read(PciTestdev::kPioBar, PciTestdev::kOffsetField, 4), 0x800u);
}

TEST_F(DevPciTestdev, WiderWritesToTheSelectorUseTheirLowByte) {
  write(PciTestdev::kMmioBar, 0, 4, 0x7F7F7F02);  // bytes 1..3 land on width and pad: ignored
  EXPECT_EQ(testdev_->selected_test(), std::optional<unsigned>(2));
  EXPECT_EQ(read(PciTestdev::kMmioBar, 0, 4), 0x0000'0102u);
  write(PciTestdev::kPioBar, 0, 2, 0x0001);
  EXPECT_EQ(testdev_->selected_test(), std::optional<unsigned>(4));
  write(PciTestdev::kPioBar, 0, 8, 0xFFFF'FFFF'FFFF'FF03ull);
  EXPECT_FALSE(testdev_->selected_test().has_value());
}

TEST_F(DevPciTestdev, WritesToReadOnlyFieldsChangeNothing) {
  select(PciTestdev::kPioBar, 2);
  write(PciTestdev::kPioBar, 0x85, 1, 0xFA);
  write(PciTestdev::kPioBar, PciTestdev::kWidthField, 1, 4);
  write(PciTestdev::kPioBar, PciTestdev::kOffsetField, 4, 0x10);
  write(PciTestdev::kPioBar, PciTestdev::kDataField, 4, 0x12345678);
  write(PciTestdev::kPioBar, PciTestdev::kCountField, 4, 0);
  write(PciTestdev::kPioBar, PciTestdev::kNameField, 8, 0x4141414141414141);
  write(PciTestdev::kMmioBar, 0x40, 8, 0);
  auto expected = qemu_header(kQemuTests[5], 0x40);
  expected[PciTestdev::kCountField] = 1;
  for (uint64_t offset = 0; offset < expected.size(); ++offset) {
    EXPECT_EQ(read(PciTestdev::kPioBar, offset, 1), expected[offset]) << offset;
  }
}

TEST_F(DevPciTestdev, CountWrapsAtThirtyTwoBitsLikeQemusLe32) {
  use_host();
  select(PciTestdev::kMmioBar, 2);
  {
    std::lock_guard lock(testdev_->mutex());
    testdev_->doorbell(PciTestdev::kMmioBar, 0x802, 1, 0xFA, 0xFFFF'FFFFull);
  }
  write(PciTestdev::kMmioBar, 0x802, 1, 0xFA);
  write(PciTestdev::kMmioBar, 0x802, 1, 0xFA);
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 1u);
}

TEST_F(DevPciTestdev, LocklessReadsSeeTheSameBytesButTakeNoPendingSignals) {
  use_host();
  select(PciTestdev::kMmioBar, 1);
  for (int i = 0; i < 4; ++i) write(PciTestdev::kMmioBar, 0x801, 1, 0);
  for (uint64_t offset = 0; offset < 0x40; offset += 4) {
    uint64_t lockless = testdev_->read_lockless(PciTestdev::kMmioBar, offset, 4);
    if (offset == PciTestdev::kCountField) {
      EXPECT_EQ(lockless, 0u) << "the fastpath must not take pending signals";
    } else {
      EXPECT_EQ(lockless, read(PciTestdev::kMmioBar, offset, 4)) << offset;
    }
  }
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 4u);
  EXPECT_EQ(testdev_->read_lockless(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 4u);
  EXPECT_EQ(testdev_->read_lockless(PciTestdev::kPioBar, 0xFE, 4), ~0ull) << "past the BAR";
  EXPECT_EQ(testdev_->read_lockless(2, 0, 4), ~0ull) << "no such BAR";
}

TEST_F(DevPciTestdev, LocklessCountReadsRaceSafelyWithWrites) {
  // Run under TSan to see the point; here it checks that a concurrent reader only sees counts that happened.
  select(PciTestdev::kPioBar, 0);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t count = testdev_->read_lockless(PciTestdev::kPioBar, PciTestdev::kCountField, 4);
      EXPECT_GE(count, last);
      EXPECT_LE(count, 1000u);
      last = count;
    }
  });
  for (int i = 0; i < 1000; ++i) write(PciTestdev::kPioBar, 0x83, 1, 0xFA);
  done = true;
  reader.join();
  EXPECT_EQ(testdev_->read_lockless(PciTestdev::kPioBar, PciTestdev::kCountField, 4), 1000u);
}

TEST_F(DevPciTestdev, ChangingTheHostMovesTheSelectedDoorbell) {
  select(PciTestdev::kMmioBar, 2);  // no host yet: nothing registered
  use_host();
  ASSERT_EQ(host_.active().size(), 1u);
  EXPECT_EQ(host_.active()[0]->offset, 0x802u);
  testdev_->set_doorbell_host(nullptr);
  EXPECT_TRUE(host_.active().empty());
  use_host();
  EXPECT_EQ(host_.active().size(), 1u);
  {
    std::lock_guard lock(testdev_->mutex());
    testdev_->config_write(pci_config::kCommand, 2, 0);  // the bus windows let go of the device
  }
  testdev_.reset();  // the destructor removes the doorbell: the host must not keep a dangling device
  EXPECT_TRUE(host_.active().empty());
}

TEST_F(DevPciTestdev, AnyLengthOptionRegistersMmioWildcardWithSizeZero) {
  attach(std::make_shared<PciTestdev>("pci-testdev", PciTestdevOptions{.any_length_mmio_wildcard = true}));
  use_host();
  select(PciTestdev::kMmioBar, 1);
  ASSERT_EQ(host_.active().size(), 1u);
  EXPECT_EQ(host_.active()[0]->size, 0u);
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kWidthField, 1), 1u) << "QEMU still shows width 1";
  write(PciTestdev::kMmioBar, 0x801, 4, 0);  // any length now goes to the eventfd
  EXPECT_EQ(read(PciTestdev::kMmioBar, PciTestdev::kCountField, 4), 1u);
  for (auto [bar, selector] : {std::pair{0u, 2}, std::pair{1u, 1}, std::pair{1u, 2}}) {
    select(bar, static_cast<uint8_t>(selector));
    ASSERT_EQ(host_.active().size(), 1u);
    EXPECT_EQ(host_.active()[0]->size, 1u) << "only mmio-wildcard-eventfd is any-length";
  }
}

TEST_F(DevPciTestdev, RegisterTableNamesEveryFieldInsideItsBar) {
  auto blocks = testdev_->register_blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].region, PciTestdev::kMmioBar);
  EXPECT_EQ(blocks[0].name, "mmio");
  EXPECT_EQ(blocks[1].region, PciTestdev::kPioBar);
  EXPECT_EQ(blocks[1].name, "pio");
  for (const auto& block : blocks) {
    SCOPED_TRACE(block.name);
    uint64_t bar_size = block.region == PciTestdev::kMmioBar ? PciTestdev::kMmioBarSize : PciTestdev::kPioBarSize;
    std::set<std::string_view> names;
    for (const auto& reg : block.registers) {
      SCOPED_TRACE(reg.name);
      EXPECT_TRUE(names.insert(reg.name).second) << "duplicate name";
      EXPECT_GE(reg.width, 1u);
      EXPECT_LE(reg.offset + reg.width, bar_size);
      EXPECT_TRUE(reg.width == 1 || reg.width == 4 || reg.name == "name");
      for (const auto& other : block.registers) {
        if (&other == &reg) continue;
        EXPECT_FALSE(reg.offset < other.offset + other.width && other.offset < reg.offset + reg.width)
            << "overlaps " << other.name;
      }
      EXPECT_NE(reg.effect, io::Effect::constant) << "nothing here is constant: it follows the selection";
      EXPECT_NE(reg.effect, io::Effect::read_sensitive);
    }
    auto find = [&](uint64_t offset, unsigned size) { return io::find_register(block.registers, offset, size); };
    ASSERT_TRUE(find(0x00, 1) && find(0x01, 1) && find(0x04, 4) && find(0x08, 4) && find(0x0C, 4) && find(0x10, 1));
    EXPECT_EQ(find(0x00, 1)->name, "test");
    EXPECT_EQ(find(0x00, 1)->access, io::Access::rw);
    EXPECT_EQ(find(0x00, 1)->effect, io::Effect::synchronous);
    EXPECT_EQ(find(0x01, 1)->name, "width");
    EXPECT_EQ(find(0x04, 4)->name, "offset");
    EXPECT_EQ(find(0x08, 4)->name, "data");
    EXPECT_EQ(find(0x08, 1)->name, "data");
    const io::Register* count = find(0x0C, 4);
    EXPECT_EQ(count->name, "count");
    EXPECT_TRUE(count->lockless_read);
    EXPECT_EQ(count->access, io::Access::ro);
    EXPECT_EQ(find(0x10 + 24, 1)->name, "name");  // the longest name's NUL
    for (unsigned selector = 0; selector < 3; ++selector) {
      const QemuTest& test = kQemuTests[block.region * 3 + selector];
      const io::Register* port = find(test.offset, 1);
      ASSERT_NE(port, nullptr) << test.name;
      constexpr std::string_view kPortNames[] = {"port_no_eventfd", "port_wildcard_eventfd",
                                                 "port_datamatch_eventfd"};
      EXPECT_EQ(port->name, kPortNames[selector]);
      EXPECT_EQ(port->effect, io::Effect::latch);
      EXPECT_EQ(port->access, io::Access::wo);
      EXPECT_EQ(port->doorbell_value, test.data);
      EXPECT_FALSE(port->lockless_read);
    }
  }
}

}  // namespace
}  // namespace iovmm::devices
