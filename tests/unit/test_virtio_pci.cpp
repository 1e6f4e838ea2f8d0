// virtio-pci driven as a guest driver drives it: configuration space (identity, BARs, capabilities, MSI-X control,
// the PCI-configuration-access window), the modern BAR's common configuration, ISR and notify, the MSI-X table, and
// the legacy I/O BAR of a transitional device. A fake device type records what the transport asks of it; fake INTx
// line and MSI allocator record what reaches the guest; the rings live in real guest memory.
#define VIRTIO_RING_NO_LEGACY
#include <gtest/gtest.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "devices/virtio/pci.h"
#include "dispatch/binding.h"
#include "virtio_transport_fakes.h"

namespace iovmm::devices::virtio {
namespace {

using testing::FakeDevice;
using testing::FakeIrq;
using testing::FakeWatcher;
using testing::make_available;

constexpr uint64_t kRam = 0x100000;
constexpr uint64_t kDeviceFeatures = (1ull << 0) | (1ull << 9);
constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
constexpr uint64_t kEventIdx = 1ull << VIRTIO_RING_F_EVENT_IDX;
constexpr uint64_t kIndirect = 1ull << VIRTIO_RING_F_INDIRECT_DESC;
constexpr unsigned kModern = VirtioPci::kModernBar;

// Every vector it hands out logs into `log`: "v<n> msg <address>:<data>" and "v<n> signal".
class FakeMsi final : public io::MsiAllocator {
 public:
  class Vector final : public io::MsiVector {
   public:
    Vector(FakeMsi& owner, int id) : owner_(owner), id_(id) {}
    ~Vector() override { ++owner_.released; }
    void set_message(uint64_t address, uint32_t data) override {
      owner_.log.push_back("v" + std::to_string(id_) + " msg " + std::to_string(address) + ":" + std::to_string(data));
    }
    void signal() override { owner_.log.push_back("v" + std::to_string(id_) + " signal"); }

   private:
    FakeMsi& owner_;
    int id_;
  };
  std::unique_ptr<io::MsiVector> allocate() override {
    if (fail) throw Error("no GSI left");
    return std::make_unique<Vector>(*this, allocated++);
  }
  std::vector<std::string> log;
  int allocated = 0;
  int released = 0;
  bool fail = false;
};


class VirtioPciTest : public ::testing::Test {
 protected:
  void build(bool with_msi, bool legacy_io_bar, uint32_t type = VIRTIO_ID_BLOCK) {
    auto fake = std::make_unique<FakeDevice>(kDeviceFeatures, type);
    device = fake.get();
    DeviceContext context;
    context.memory = &memory;
    context.watcher = &watcher;
    context.msi = with_msi ? &msi : nullptr;
    pci = std::make_shared<VirtioPci>("virtio-pci0", std::move(fake), context,
                                      VirtioPciOptions{.legacy_io_bar = legacy_io_bar});
    pci->connect_intx(intx, 11);
  }
  void SetUp() override { build(true, false); }

  uint32_t cfg(unsigned offset, unsigned size = 4) {
    std::lock_guard lock(pci->mutex());
    return pci->config_read(offset, size);
  }
  void set_cfg(unsigned offset, unsigned size, uint32_t value) {
    std::lock_guard lock(pci->mutex());
    pci->config_write(offset, size, value);
  }
  uint64_t rd(unsigned bar, uint64_t offset, unsigned size) {
    std::lock_guard lock(pci->mutex());
    return pci->read(bar, offset, size);
  }
  void wr(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
    std::lock_guard lock(pci->mutex());
    pci->write(bar, offset, size, value);
  }
  uint32_t common(unsigned field, unsigned size) { return static_cast<uint32_t>(rd(kModern, field, size)); }
  void set_common(unsigned field, unsigned size, uint64_t value) { wr(kModern, field, size, value); }

  // The configuration-space offset of the vendor capability of `cfg_type`, or 0.
  unsigned find_virtio_cap(uint8_t cfg_type) {
    for (unsigned at = cfg(PCI_CAPABILITY_LIST, 1); at; at = cfg(at + 1, 1)) {
      if (cfg(at, 1) == PCI_CAP_ID_VNDR && cfg(at + offsetof(virtio_pci_cap, cfg_type), 1) == cfg_type) return at;
    }
    return 0;
  }
  void enable_msix(bool function_mask = false) {
    unsigned control = pci->msix_capability() + PCI_MSIX_FLAGS;
    set_cfg(control, 2, PCI_MSIX_FLAGS_ENABLE | (function_mask ? PCI_MSIX_FLAGS_MASKALL : 0));
  }
  void program_entry(unsigned entry, uint64_t address, uint32_t data, bool masked) {
    uint64_t at = VirtioPci::kMsixTableOffset + 16 * entry;
    wr(VirtioPci::kMsixBar, at + PCI_MSIX_ENTRY_LOWER_ADDR, 8, address);
    wr(VirtioPci::kMsixBar, at + PCI_MSIX_ENTRY_DATA, 4, data);
    wr(VirtioPci::kMsixBar, at + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
  }
  void negotiate(uint64_t features = kVersion1 | kEventIdx) {
    set_common(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    set_common(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    set_common(VIRTIO_PCI_COMMON_GF, 4, static_cast<uint32_t>(features));
    set_common(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    set_common(VIRTIO_PCI_COMMON_GF, 4, static_cast<uint32_t>(features >> 32));
    set_common(VIRTIO_PCI_COMMON_STATUS, 1, common(VIRTIO_PCI_COMMON_STATUS, 1) | VIRTIO_CONFIG_S_FEATURES_OK);
  }
  void setup_queue(unsigned q, uint16_t size) {
    uint64_t base = 0x10000 + 0x1000 * q;
    set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
    set_common(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
    set_common(VIRTIO_PCI_COMMON_Q_DESCLO, 8, base);  // Linux writes two halves; one 64-bit write is split
    set_common(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, base + 0x100);
    set_common(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
    set_common(VIRTIO_PCI_COMMON_Q_USEDLO, 4, base + 0x200);
    set_common(VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
    set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
  }
  void bring_up() {
    negotiate(kVersion1);
    setup_queue(0, 4);
    setup_queue(1, 8);
    set_common(VIRTIO_PCI_COMMON_STATUS, 1, common(VIRTIO_PCI_COMMON_STATUS, 1) | VIRTIO_CONFIG_S_DRIVER_OK);
    ASSERT_NE(device->context, nullptr);  // activated
  }
  void complete_one(uint16_t& next) {
    make_available(memory, 0x10000, 0x10100, 4, next);
    wr(kModern, VirtioPci::kNotifyOffset, 2, 0);
  }

  GuestMemory memory{{RamRange{0, kRam}}};
  FakeWatcher watcher;
  FakeMsi msi;
  std::shared_ptr<FakeIrq> intx = std::make_shared<FakeIrq>();
  FakeDevice* device = nullptr;
  std::shared_ptr<VirtioPci> pci;
};

TEST_F(VirtioPciTest, ModernIdentity) {
  EXPECT_EQ(cfg(PCI_VENDOR_ID, 2), 0x1af4u);
  EXPECT_EQ(cfg(PCI_DEVICE_ID, 2), 0x1042u);
  EXPECT_EQ(cfg(PCI_REVISION_ID, 1), 1u);
  EXPECT_EQ(cfg(PCI_CLASS_REVISION) >> 8, 0x018000u);
  EXPECT_EQ(cfg(PCI_SUBSYSTEM_ID, 2), 0x1100u);
  EXPECT_EQ(cfg(PCI_INTERRUPT_PIN, 1), 1u);
  EXPECT_EQ(cfg(PCI_INTERRUPT_LINE, 1), 11u);
  ASSERT_EQ(pci->bars().size(), 2u);
  EXPECT_EQ(pci->bar_spec(VirtioPci::kMsixBar)->size, 0x1000u);
  const BarSpec* modern = pci->bar_spec(kModern);
  ASSERT_NE(modern, nullptr);
  EXPECT_EQ(modern->kind, BarKind::mem64);
  EXPECT_TRUE(modern->prefetchable);
  EXPECT_EQ(modern->size, 0x4000u);
}

TEST_F(VirtioPciTest, TransitionalIdentityAndLegacyBar) {
  build(true, true);
  EXPECT_EQ(cfg(PCI_DEVICE_ID, 2), 0x1001u);
  EXPECT_EQ(cfg(PCI_REVISION_ID, 1), 0u);
  EXPECT_EQ(cfg(PCI_SUBSYSTEM_ID, 2), uint32_t{VIRTIO_ID_BLOCK});
  const BarSpec* legacy = pci->bar_spec(VirtioPci::kLegacyBar);
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(legacy->kind, BarKind::io);
  EXPECT_EQ(legacy->size, 64u);  // 24 + 12 bytes, rounded up to a power of two
  build(false, true);
  EXPECT_EQ(pci->bar_spec(VirtioPci::kLegacyBar)->size, 32u);  // 20 + 12
  EXPECT_EQ(pci->bar_spec(VirtioPci::kMsixBar), nullptr);
  EXPECT_THROW(build(true, true, VIRTIO_ID_RPMSG), UsageError);  // no transitional id
}

TEST_F(VirtioPciTest, CapabilitiesDescribeTheModernBar) {
  struct Expected {
    uint8_t type;
    uint32_t offset;
  };
  for (auto [type, offset] : {Expected{VIRTIO_PCI_CAP_COMMON_CFG, 0x0}, Expected{VIRTIO_PCI_CAP_ISR_CFG, 0x1000},
                              Expected{VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000}, Expected{VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000}}) {
    unsigned at = find_virtio_cap(type);
    ASSERT_NE(at, 0u) << int{type};
    EXPECT_EQ(cfg(at + offsetof(virtio_pci_cap, bar), 1), kModern);
    EXPECT_EQ(cfg(at + offsetof(virtio_pci_cap, offset)), offset);
    EXPECT_GE(cfg(at + offsetof(virtio_pci_cap, length)), 0x38u);
  }
  unsigned notify = find_virtio_cap(VIRTIO_PCI_CAP_NOTIFY_CFG);
  EXPECT_EQ(cfg(notify + offsetof(virtio_pci_cap, cap_len), 1), sizeof(virtio_pci_notify_cap));
  EXPECT_EQ(cfg(notify + offsetof(virtio_pci_notify_cap, notify_off_multiplier)), 0u);
  EXPECT_EQ(find_virtio_cap(VIRTIO_PCI_CAP_PCI_CFG), pci->pci_cfg_capability());
  unsigned msix = pci->msix_capability();
  ASSERT_NE(msix, 0u);
  EXPECT_EQ(cfg(msix, 1), unsigned{PCI_CAP_ID_MSIX});
  EXPECT_EQ(cfg(msix + PCI_MSIX_FLAGS, 2), 2u);  // three entries: two queues and configuration
  EXPECT_EQ(cfg(msix + PCI_MSIX_TABLE), 0x000u | VirtioPci::kMsixBar);
  EXPECT_EQ(cfg(msix + PCI_MSIX_PBA), 0x800u | VirtioPci::kMsixBar);
  // Only Enable and Function Mask are writable.
  set_cfg(msix + PCI_MSIX_FLAGS, 2, 0xFFFF);
  EXPECT_EQ(cfg(msix + PCI_MSIX_FLAGS, 2), 0xC002u);
  build(false, false);
  EXPECT_EQ(pci->msix_capability(), 0u);
}

TEST_F(VirtioPciTest, NegotiationThroughCommonConfiguration) {
  set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_DFSELECT, 4), 1u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_DF, 4), 1u);  // VERSION_1 is bit 32
  set_common(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_DF, 4), static_cast<uint32_t>(kDeviceFeatures | kEventIdx | kIndirect));
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_NUMQ, 2), 2u);

  negotiate(kEventIdx);  // no VERSION_1
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
  set_common(VIRTIO_PCI_COMMON_STATUS, 1, 0);
  negotiate(kVersion1 | kIndirect | 1);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK, unsigned{VIRTIO_CONFIG_S_FEATURES_OK});
  set_common(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_GF, 4), static_cast<uint32_t>(kIndirect | 1));
  set_common(VIRTIO_PCI_COMMON_STATUS, 1, common(VIRTIO_PCI_COMMON_STATUS, 1) | VIRTIO_CONFIG_S_DRIVER_OK);
  EXPECT_EQ(device->activations, 1);
  EXPECT_EQ(device->features, kVersion1 | kIndirect | 1);
}

TEST_F(VirtioPciTest, QueueConfigurationAndItsLimits) {
  negotiate();
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 8u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_NOFF, 2), 0u);
  setup_queue(1, 4);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 4u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x11000u);
  EXPECT_EQ(rd(kModern, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x11000u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1u);
  set_common(VIRTIO_PCI_COMMON_Q_SIZE, 2, 2);  // enabled: locked
  set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);  // drivers may not disable
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 4u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1u);
  // Past the queue count: size 0 (unavailable), no vector, nothing written.
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 9);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SELECT, 2), 9u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_MSIX, 2), unsigned{VIRTIO_MSI_NO_VECTOR});
  set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
  set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
}

TEST_F(VirtioPciTest, NotifyAndDoorbell) {
  bring_up();
  wr(kModern, VirtioPci::kNotifyOffset, 2, 1);
  wr(kModern, VirtioPci::kNotifyOffset, 2, 7);      // no such queue
  wr(kModern, VirtioPci::kNotifyOffset + 4, 2, 0);  // not the notify address
  EXPECT_EQ(rd(kModern, VirtioPci::kNotifyOffset, 2), 0u);
  {
    std::lock_guard lock(pci->mutex());
    pci->doorbell(kModern, VirtioPci::kNotifyOffset, 2, 0, 4);
  }
  EXPECT_EQ(device->notifies, (std::vector<unsigned>{1, 0}));
}

TEST_F(VirtioPciTest, IntxFollowsIsrAndReadingIsrClearsIt) {
  build(false, false);
  bring_up();
  uint16_t next = 0;
  complete_one(next);
  EXPECT_TRUE(intx->level);
  EXPECT_EQ(cfg(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, unsigned{PCI_STATUS_INTERRUPT});
  EXPECT_EQ(rd(kModern, VirtioPci::kIsrOffset + 1, 1), 0u);  // not the ISR byte: no side effect
  EXPECT_TRUE(intx->level);
  EXPECT_EQ(rd(kModern, VirtioPci::kIsrOffset, 1), 1u);
  EXPECT_FALSE(intx->level);
  EXPECT_EQ(rd(kModern, VirtioPci::kIsrOffset, 1), 0u);
  // The interrupt-disable bit masks the pin, not the condition.
  set_cfg(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
  complete_one(next);
  EXPECT_FALSE(intx->level);
  set_cfg(PCI_COMMAND, 2, 0);
  EXPECT_TRUE(intx->level);
}

TEST_F(VirtioPciTest, MsixDeliversTheChosenVectors) {
  bring_up();
  enable_msix();
  program_entry(0, 0xFEE00000, 0x41, false);
  program_entry(2, 0xFEE01000, 0x42, false);
  EXPECT_EQ(msi.log, (std::vector<std::string>{"v0 msg 4276092928:65", "v1 msg 4276097024:66"}));
  msi.log.clear();
  set_common(VIRTIO_PCI_COMMON_MSIX, 2, 2);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_MSIX, 2), 2u);
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 3);  // past the table: reads back as none
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_MSIX, 2), unsigned{VIRTIO_MSI_NO_VECTOR});
  uint16_t next = 0;
  complete_one(next);
  EXPECT_EQ(msi.log, (std::vector<std::string>{"v0 signal"}));
  EXPECT_FALSE(intx->level);  // MSI-X enabled: no INTx
  {
    std::lock_guard lock(pci->mutex());
    device->context->fail("test");
  }
  EXPECT_EQ(msi.log, (std::vector<std::string>{"v0 signal", "v1 signal"}));
}

TEST_F(VirtioPciTest, MaskedVectorsPendAndDeliverOnUnmask) {
  bring_up();
  enable_msix();
  program_entry(0, 0xFEE00000, 0x41, true);  // masked: no message programmed yet
  EXPECT_TRUE(msi.log.empty());
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
  uint16_t next = 0;
  complete_one(next);
  EXPECT_TRUE(msi.log.empty());
  EXPECT_EQ(rd(VirtioPci::kMsixBar, VirtioPci::kMsixPbaOffset, 8), 1u);
  wr(VirtioPci::kMsixBar, VirtioPci::kMsixPbaOffset, 8, 0);  // the PBA is read-only
  EXPECT_EQ(rd(VirtioPci::kMsixBar, VirtioPci::kMsixPbaOffset, 8), 1u);
  wr(VirtioPci::kMsixBar, PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0xFFFFFFFE);  // reserved bits: unmask only
  EXPECT_EQ(rd(VirtioPci::kMsixBar, PCI_MSIX_ENTRY_VECTOR_CTRL, 4), 0u);
  EXPECT_EQ(msi.log, (std::vector<std::string>{"v0 msg 4276092928:65", "v0 signal"}));
  EXPECT_EQ(rd(VirtioPci::kMsixBar, VirtioPci::kMsixPbaOffset, 8), 0u);
  // The function mask holds every vector.
  msi.log.clear();
  enable_msix(true);
  complete_one(next);
  EXPECT_TRUE(msi.log.empty());
  enable_msix(false);
  EXPECT_EQ(msi.log, (std::vector<std::string>{"v0 signal"}));
}

TEST_F(VirtioPciTest, DisablingMsixFallsBackToIntx) {
  bring_up();
  enable_msix();
  uint16_t next = 0;
  complete_one(next);  // no vector chosen: nothing delivered, ISR still set
  EXPECT_FALSE(intx->level);
  set_cfg(pci->msix_capability() + PCI_MSIX_FLAGS, 2, 0);
  EXPECT_TRUE(intx->level);
  EXPECT_EQ(rd(kModern, VirtioPci::kIsrOffset, 1), 1u);
  EXPECT_FALSE(intx->level);
}

TEST_F(VirtioPciTest, VectorAllocationFailureIsNotFatal) {
  msi.fail = true;
  bring_up();
  enable_msix();
  program_entry(0, 0xFEE00000, 0x41, false);
  set_common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  set_common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
  uint16_t next = 0;
  complete_one(next);
  EXPECT_TRUE(msi.log.empty());
}

TEST_F(VirtioPciTest, ResetForgetsVectorChoicesButNotTheTable) {
  bring_up();
  enable_msix();
  program_entry(0, 0xFEE00000, 0x41, false);
  set_common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  set_common(VIRTIO_PCI_COMMON_STATUS, 1, 0);
  EXPECT_EQ(device->resets, 1);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_MSIX, 2), unsigned{VIRTIO_MSI_NO_VECTOR});
  EXPECT_EQ(rd(VirtioPci::kMsixBar, PCI_MSIX_ENTRY_DATA, 4), 0x41u);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1), 0u);
}

TEST_F(VirtioPciTest, ConfigurationAccessWindowReachesTheBars) {
  unsigned cap = pci->pci_cfg_capability();
  ASSERT_NE(cap, 0u);
  unsigned data = cap + offsetof(virtio_pci_cfg_cap, pci_cfg_data);
  set_cfg(cap + offsetof(virtio_pci_cap, bar), 1, kModern);
  set_cfg(cap + offsetof(virtio_pci_cap, offset), 4, VIRTIO_PCI_COMMON_STATUS);
  set_cfg(cap + offsetof(virtio_pci_cap, length), 4, 1);
  set_cfg(data, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1), unsigned{VIRTIO_CONFIG_S_ACKNOWLEDGE});
  set_cfg(cap + offsetof(virtio_pci_cap, offset), 4, VirtioPci::kDeviceOffset);
  set_cfg(cap + offsetof(virtio_pci_cap, length), 4, 4);
  EXPECT_EQ(cfg(data), 0x13121110u);
  // Invalid windows do nothing: odd length, unaligned offset, no such BAR, past the BAR.
  for (auto [bar, offset, length] : {std::tuple{4u, 0x2000u, 3u}, std::tuple{4u, 0x2001u, 2u},
                                     std::tuple{3u, 0u, 4u}, std::tuple{4u, 0x4000u, 4u}}) {
    set_cfg(cap + offsetof(virtio_pci_cap, bar), 1, bar);
    set_cfg(cap + offsetof(virtio_pci_cap, offset), 4, offset);
    set_cfg(cap + offsetof(virtio_pci_cap, length), 4, length);
    set_cfg(data, 4, 0);
    EXPECT_EQ(cfg(data), 0u);
  }
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1), unsigned{VIRTIO_CONFIG_S_ACKNOWLEDGE});
}

TEST_F(VirtioPciTest, LegacyInterface) {
  build(true, true);
  constexpr unsigned kLegacy = VirtioPci::kLegacyBar;
  EXPECT_EQ(rd(kLegacy, VIRTIO_PCI_HOST_FEATURES, 4), static_cast<uint32_t>(kDeviceFeatures | kEventIdx | kIndirect));
  wr(kLegacy, VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  wr(kLegacy, VIRTIO_PCI_GUEST_FEATURES, 4, kIndirect | 1 | (1u << 4));  // bit 4 was never offered
  wr(kLegacy, VIRTIO_PCI_QUEUE_SEL, 2, 1);
  EXPECT_EQ(rd(kLegacy, VIRTIO_PCI_QUEUE_NUM, 2), 8u);
  wr(kLegacy, VIRTIO_PCI_QUEUE_PFN, 4, 0x40);
  EXPECT_EQ(rd(kLegacy, VIRTIO_PCI_QUEUE_PFN, 4), 0x40u);
  // MSI-X disabled: configuration at 20.
  EXPECT_EQ(rd(kLegacy, 20, 4), 0x13121110u);
  wr(kLegacy, VIRTIO_PCI_STATUS, 1,
     VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  ASSERT_EQ(device->activations, 1);
  EXPECT_EQ(device->features, kIndirect | 1);
  const Virtqueue& q1 = device->context->queues[1];
  EXPECT_EQ(q1.desc_addr(), 0x40000u);
  EXPECT_EQ(q1.avail_addr(), 0x40080u);
  EXPECT_EQ(q1.used_addr(), 0x41000u);
  EXPECT_TRUE(q1.ready());
  EXPECT_EQ(rd(kLegacy, VIRTIO_PCI_STATUS, 1), unsigned{VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                                         VIRTIO_CONFIG_S_DRIVER_OK});
  // Notify, interrupt and the read-clearing ISR.
  uint16_t next = 0;
  make_available(memory, 0x40000, 0x40080, 8, next);
  wr(kLegacy, VIRTIO_PCI_QUEUE_NOTIFY, 2, 1);
  EXPECT_EQ(device->notifies, (std::vector<unsigned>{1}));
  EXPECT_TRUE(intx->level);
  EXPECT_EQ(rd(kLegacy, VIRTIO_PCI_ISR, 1), 1u);
  EXPECT_FALSE(intx->level);
  {
    std::lock_guard lock(pci->mutex());
    pci->doorbell(kLegacy, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0, 2);
  }
  EXPECT_EQ(device->notifies, (std::vector<unsigned>{1, 0}));
  // MSI-X enabled: the vector registers at 20 and 22, configuration at 24.
  enable_msix();
  wr(kLegacy, VIRTIO_MSI_CONFIG_VECTOR, 2, 1);
  EXPECT_EQ(rd(kLegacy, VIRTIO_MSI_CONFIG_VECTOR, 2), 1u);
  EXPECT_EQ(rd(kLegacy, VIRTIO_MSI_QUEUE_VECTOR, 2), unsigned{VIRTIO_MSI_NO_VECTOR});
  EXPECT_EQ(rd(kLegacy, 24, 2), 0x1110u);
  wr(kLegacy, 24 + 4, 4, 0xCAFE);
  EXPECT_EQ(device->config_writes, (std::vector<FakeDevice::ConfigWrite>{{4, 4, 0xCAFE}}));
}

TEST_F(VirtioPciTest, HostileAccesses) {
  bring_up();
  set_common(VIRTIO_PCI_COMMON_STATUS, 4, 0);  // not the field's width: ignored (no reset)
  EXPECT_EQ(device->resets, 0);
  set_common(VIRTIO_PCI_COMMON_NUMQ, 2, 9);  // read-only
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_NUMQ, 2), 2u);
  EXPECT_EQ(rd(kModern, 0xFFE, 4), 0u);  // straddles common configuration and ISR
  EXPECT_EQ(common(0x38, 4), 0u);        // past the structure
  // A 4-byte read across num_queues and status composes both fields' bytes.
  EXPECT_EQ(common(VIRTIO_PCI_COMMON_NUMQ, 4) & 0xFFFF, 2u);
  EXPECT_EQ(rd(kModern, VirtioPci::kDeviceOffset + 0x800, 4), 0u);  // past config_size
  wr(kModern, VirtioPci::kDeviceOffset + 10, 4, 1);                  // runs past config_size
  EXPECT_TRUE(device->config_writes.empty());
  EXPECT_EQ(rd(5, 0, 4) & 0xFFFFFFFF, 0xFFFFFFFFu);  // no such BAR
  EXPECT_EQ(rd(VirtioPci::kMsixBar, 0x7FC, 8), 0u);  // straddles table and PBA
  wr(VirtioPci::kMsixBar, 0x100, 4, 0x1234);         // past the table: nothing to change
  EXPECT_EQ(rd(VirtioPci::kMsixBar, 0x100, 4), 0u);
  EXPECT_EQ(device->notifies.size(), 0u);
  EXPECT_EQ(device->activations, 1);
}

TEST_F(VirtioPciTest, QuiesceDropsVectorsAndWatches) {
  bring_up();
  enable_msix();
  program_entry(0, 0xFEE00000, 0x41, false);
  {
    std::lock_guard lock(pci->mutex());
    device->context->watch(5, [] {});
  }
  pci->quiesce();
  EXPECT_EQ(device->resets, 1);
  EXPECT_TRUE(watcher.handlers.empty());
  EXPECT_EQ(msi.released, msi.allocated);
}

// --- Register tables ---

std::set<std::string> bound(const std::map<unsigned, dispatch::WindowBinding>& bindings, io::Path path) {
  std::set<std::string> names;
  for (const auto& [region, binding] : bindings) {
    for (const auto& reg : binding.registers) {
      if (reg.path == path) names.insert(std::to_string(region) + "." + std::string(reg.reg.name));
    }
  }
  return names;
}

dispatch::DispatchChoice choose(const char* key, const char* value) {
  dispatch::DispatchChoice choice;
  choice.add("virtio-pci0", key, value);
  return choice;
}

TEST_F(VirtioPciTest, RegisterTablesAreWellFormed) {
  build(true, true);
  auto blocks = pci->register_blocks();
  ASSERT_EQ(blocks.size(), 3u);
  for (const auto& block : blocks) {
    std::set<std::string_view> names;
    for (const auto& reg : block.registers) {
      EXPECT_TRUE(names.insert(reg.name).second) << block.name << "." << reg.name;
      EXPECT_LE(reg.offset + reg.width, pci->bar_spec(block.region)->size) << block.name << "." << reg.name;
      for (const auto& other : block.registers) {
        if (&other != &reg) {
          EXPECT_FALSE(other.covers(reg.offset, 1)) << reg.name << " overlaps " << other.name;
        }
      }
      if (reg.effect == io::Effect::constant) {
        EXPECT_EQ(rd(block.region, reg.offset, reg.width), reg.reset_value) << block.name << "." << reg.name;
      }
    }
  }
}

TEST_F(VirtioPciTest, CoalescedBindsTheLatches) {
  build(true, true);
  auto bindings = dispatch::bind_registers("virtio-pci0", pci->register_blocks(), choose("dispatch", "coalesced"));
  EXPECT_EQ(bound(bindings, io::Path::coalesced),
            (std::set<std::string>{"4.device_features_sel", "4.driver_features_sel", "4.driver_features",
                                   "4.queue_sel", "4.queue_size", "4.queue_desc_lo", "4.queue_desc_hi",
                                   "4.queue_avail_lo", "4.queue_avail_hi", "4.queue_used_lo", "4.queue_used_hi",
                                   "0.driver_features", "0.queue_sel"}));
}

TEST_F(VirtioPciTest, QueueNotifyIsADatamatchDoorbellOnBothInterfaces) {
  build(true, true);
  auto bindings =
      dispatch::bind_registers("virtio-pci0", pci->register_blocks(), choose("dispatch.queue_notify", "ioeventfd"));
  EXPECT_EQ(bound(bindings, io::Path::ioeventfd), (std::set<std::string>{"4.queue_notify", "0.queue_notify"}));
  for (const auto& [region, binding] : bindings) {
    for (const auto& reg : binding.registers) {
      EXPECT_EQ(reg.reg.datamatch_values, 2);
      EXPECT_EQ(reg.reg.width, 2u);
    }
  }
}

TEST_F(VirtioPciTest, IsrIsReadSensitiveAndRefusesTheFastpath) {
  build(true, true);
  EXPECT_THROW((void)dispatch::bind_registers("virtio-pci0", pci->register_blocks(), choose("dispatch.isr", "fastpath")),
               UsageError);
  auto bindings = dispatch::bind_registers("virtio-pci0", pci->register_blocks(), choose("dispatch", "fastpath"));
  EXPECT_EQ(bound(bindings, io::Path::fastpath),
            (std::set<std::string>{"4.num_queues", "4.queue_notify_off", "0.device_features"}));
  EXPECT_THROW(
      (void)dispatch::bind_registers("virtio-pci0", pci->register_blocks(), choose("dispatch.status", "coalesced")),
      UsageError);
}

}  // namespace
}  // namespace iovmm::devices::virtio
