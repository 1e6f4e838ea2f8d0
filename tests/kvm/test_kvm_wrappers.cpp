// The kvm/ wrappers against real KVM, with guests of a few hand-assembled 32-bit instructions (the backend here
// emulates CPL0 code, so tiny guests keep these fast).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "../support/kvm_required.h"
#include "boot/entry_state.h"
#include "common/error.h"
#include "common/fd.h"
#include "dispatch/coalesced.h"
#include "io/bus.h"
#include "kvm/cpuid.h"
#include "kvm/stats.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine/cpu_setup.h"
#include "memory/guest_memory.h"

namespace iovmm {
namespace {

constexpr uint64_t kCode = 0x1000;
// mov al, 0x2a; out 0xf4, al
const std::vector<uint8_t> kExitMarker = {0xb0, 0x2a, 0xe6, 0xf4};

class TinyVm : public ::testing::Test {
 protected:
  void SetUp() override {
    IOVMM_REQUIRE_KVM();
    system_ = std::make_unique<kvm::System>();
    memory_ = std::make_unique<GuestMemory>(std::vector<RamRange>{{0, 2 << 20}});
    vm_ = std::make_unique<kvm::Vm>(*system_);
    const auto& region = memory_->regions().front();
    vm_->set_memory_region(0, region.gpa, region.size, region.host);
    vm_->create_irqchip();
    vm_->set_tss_and_identity_map(0xfeffd000, 0xfeffc000);
    vcpu_ = std::make_unique<kvm::Vcpu>(*vm_, 0);
    set_vcpu_cpuid(*vcpu_, *system_, 1);
  }

  void load(std::vector<uint8_t> code) {
    code.insert(code.end(), kExitMarker.begin(), kExitMarker.end());
    code.push_back(0xf4);  // hlt, never reached
    ASSERT_TRUE(memory_->write(kCode, code.data(), code.size()));
    apply_entry_state(*vcpu_, boot::setup_protected_mode_entry(*memory_, static_cast<uint32_t>(kCode), 0, 0));
  }

  // Runs to the next user-space exit.
  kvm_run* run_once() {
    int err = vcpu_->run();
    EXPECT_EQ(err, 0);
    return vcpu_->run_state();
  }

  // Runs until the marker port write, counting other exits on the way.
  void run_to_marker() {
    for (int i = 0; i < 100; ++i) {
      kvm_run* run = run_once();
      ASSERT_NE(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_SHUTDOWN));
      ASSERT_NE(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_INTERNAL_ERROR));
      if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) return;
    }
    FAIL() << "guest never reached the marker";
  }

  std::unique_ptr<kvm::System> system_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<kvm::Vm> vm_;
  std::unique_ptr<kvm::Vcpu> vcpu_;
};

TEST_F(TinyVm, PortWriteExitsWithItsValue) {
  load({});
  kvm_run* run = run_once();
  ASSERT_EQ(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_IO));
  EXPECT_EQ(run->io.port, 0xf4);
  EXPECT_EQ(run->io.size, 1);
  EXPECT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(run)[run->io.data_offset], 0x2a);
}

TEST_F(TinyVm, MmioWriteExitsWithAddressWidthAndData) {
  load({0xc7, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x44, 0x33, 0x22, 0x11});  // mov dword [0xd0000000], 0x11223344
  kvm_run* run = run_once();
  ASSERT_EQ(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_MMIO));
  EXPECT_EQ(run->mmio.phys_addr, 0xd0000000u);
  EXPECT_EQ(run->mmio.len, 4u);
  EXPECT_TRUE(run->mmio.is_write);
  uint32_t value;
  std::memcpy(&value, run->mmio.data, 4);
  EXPECT_EQ(value, 0x11223344u);
}

TEST_F(TinyVm, DatamatchIoeventfdFiresOnlyOnItsValue) {
  Fd event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  kvm::IoeventfdSpec spec{kvm::IoSpace::pio, 0x510, 2, true, 0x1234};
  vm_->add_ioeventfd(spec, event.get());
  // mov dx, 0x510; mov ax, 0x1234; out dx, ax; out dx, ax; mov ax, 0x9999; out dx, ax (this one exits)
  load({0x66, 0xba, 0x10, 0x05, 0x66, 0xb8, 0x34, 0x12, 0x66, 0xef, 0x66, 0xef, 0x66, 0xb8, 0x99, 0x99, 0x66, 0xef});
  kvm_run* run = run_once();
  ASSERT_EQ(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_IO));
  EXPECT_EQ(run->io.port, 0x510);  // the non-matching write reached user space
  uint64_t count = 0;
  ASSERT_EQ(::read(event.get(), &count, sizeof count), static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 2u);  // one signal may stand for several writes
  vm_->remove_ioeventfd(spec, event.get());
}

// Where replayed writes land: every write, in order, with its offset and width.
class WriteLog : public io::Device {
 public:
  WriteLog() : io::Device("log") {}
  uint64_t read(unsigned, uint64_t, unsigned) override { return 0; }
  void write(unsigned, uint64_t offset, unsigned size, uint64_t value) override {
    writes.push_back({offset, size, value});
  }
  struct Write {
    uint64_t offset;
    unsigned size;
    uint64_t value;
    bool operator==(const Write&) const = default;
  };
  std::vector<Write> writes;
};

// KVM's ring, drained by the dispatch layer's real replay into a window on a real bus.
struct CoalescedReplayOnKvm {
  explicit CoalescedReplayOnKvm(io::Space space, uint64_t base, uint32_t size) {
    io::Bus& bus = space == io::Space::pio ? pio : mmio;
    bus.map(io::Window{.base = base, .size = size, .device = log, .region = 0});
    replay.add_zone(space, base, size, *bus.find_window(*log, 0));
  }
  io::Bus pio{io::Space::pio};
  io::Bus mmio{io::Space::mmio};
  std::shared_ptr<WriteLog> log = std::make_shared<WriteLog>();
  dispatch::CoalescedReplay replay{pio, mmio};
};

TEST_F(TinyVm, CoalescedPioWritesQueueInOrder) {
  vm_->register_coalesced(kvm::IoSpace::pio, 0x600, 4);
  CoalescedReplayOnKvm host(io::Space::pio, 0x600, 4);
  // mov dx, 0x600; mov al, 1; out dx, al; mov al, 2; out dx, al; mov al, 3; out dx, al
  load({0x66, 0xba, 0x00, 0x06, 0xb0, 0x01, 0xee, 0xb0, 0x02, 0xee, 0xb0, 0x03, 0xee});
  run_to_marker();
  dispatch::CoalescedRing ring{vcpu_->coalesced_ring(), vcpu_->coalesced_ring_entries()};
  EXPECT_EQ(host.replay.drain(ring), 3u);
  EXPECT_EQ(host.log->writes, (std::vector<WriteLog::Write>{{0, 1, 1}, {0, 1, 2}, {0, 1, 3}}));
  EXPECT_EQ(host.replay.drain(ring), 0u);
  vm_->unregister_coalesced(kvm::IoSpace::pio, 0x600, 4);
}

TEST_F(TinyVm, CoalescedMmioWritesQueueInOrder) {
  vm_->register_coalesced(kvm::IoSpace::mmio, 0xd0001000, 0x1000);
  CoalescedReplayOnKvm host(io::Space::mmio, 0xd0001000, 0x1000);
  // mov dword [0xd0001000], 7; mov dword [0xd0001004], 8
  load({0xc7, 0x05, 0x00, 0x10, 0x00, 0xd0, 0x07, 0, 0, 0, 0xc7, 0x05, 0x04, 0x10, 0x00, 0xd0, 0x08, 0, 0, 0});
  run_to_marker();
  EXPECT_EQ(host.replay.drain({vcpu_->coalesced_ring(), vcpu_->coalesced_ring_entries()}), 2u);
  EXPECT_EQ(host.log->writes, (std::vector<WriteLog::Write>{{0, 4, 7}, {4, 4, 8}}));
}

TEST_F(TinyVm, SyncRegsDeliverRegistersWithTheExit) {
  vcpu_->set_sync_regs(KVM_SYNC_X86_REGS);
  load({0xbb, 0x78, 0x56, 0x34, 0x12});  // mov ebx, 0x12345678
  run_to_marker();
  EXPECT_EQ(vcpu_->run_state()->s.regs.regs.rbx & 0xffffffff, 0x12345678u);
}

TEST_F(TinyVm, BinaryStatsCountExits) {
  // "exits" rather than "io_exits": kvm_pvm emulates the out instruction and counts it only under "exits".
  kvm::Stats stats(vcpu_->fd());
  int io_exits = stats.find("exits");
  ASSERT_GE(io_exits, 0);
  ASSERT_GE(stats.find("blocking"), 0);
  uint64_t before = stats.read(io_exits);
  load({});
  run_to_marker();
  EXPECT_GE(stats.read(io_exits), before + 1);
  kvm::Stats vm_stats(vm_->fd());
  EXPECT_FALSE(vm_stats.read_all().empty());
}

TEST_F(TinyVm, IrqfdAttachesToAGsi) {
  Fd event(::eventfd(0, EFD_CLOEXEC));
  vm_->add_irqfd(5, event.get());
  vm_->remove_irqfd(5, event.get());
  vm_->set_irq_line(4, true);
  vm_->set_irq_line(4, false);
}

TEST(KvmSystem, MissingDeviceIsOneClearError) {
  try {
    kvm::System system("/nonexistent/kvm");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/kvm"), std::string::npos);
  }
}

TEST(KvmSystem, RequireNamesTheCapability) {
  IOVMM_REQUIRE_KVM();
  kvm::System system;
  try {
    system.require(100000, "KVM_CAP_MADE_UP", "testing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KVM_CAP_MADE_UP"), std::string::npos);
  }
}

TEST(KvmCpuid, ArchCapabilitiesIsHiddenAndApicIdSet) {
  IOVMM_REQUIRE_KVM();
  kvm::System system;
  auto cpuid = kvm::vcpu_cpuid(system.supported_cpuid(), 3, 4);
  for (const auto& e : cpuid) {
    if (e.function == 7 && e.index == 0) {
      EXPECT_EQ(e.edx & (1u << 29), 0u);
    }
    if (e.function == 1) {
      EXPECT_EQ(e.ebx >> 24, 3u);
    }
  }
}

}  // namespace
}  // namespace iovmm

namespace iovmm {
namespace {

// The hypercall carrier writes its results back through kvm_run.s.regs on a port-I/O exit. The guest must see the
// new registers and continue after the `out`, not execute it again (KVM completes the instruction on re-entry).
TEST_F(TinyVm, SyncRegsWrittenOnAPortExitReachTheGuestOnce) {
  vcpu_->set_sync_regs(KVM_SYNC_X86_REGS);
  // mov dx, 0x0ff0; out dx, al; (then the marker: mov al, 0x2a would overwrite al, so use out 0xf4, al directly)
  std::vector<uint8_t> code = {0x66, 0xba, 0xf0, 0x0f, 0xee, 0xe6, 0xf4, 0xf4};
  ASSERT_TRUE(memory_->write(0x1000, code.data(), code.size()));
  apply_entry_state(*vcpu_, boot::setup_protected_mode_entry(*memory_, 0x1000, 0, 0));
  kvm_run* run = run_once();
  ASSERT_EQ(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_IO));
  ASSERT_EQ(run->io.port, 0x0ff0);
  run->s.regs.regs.rax = 0x55;
  run->s.regs.regs.rcx = 0x66;
  run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
  run = run_once();
  ASSERT_EQ(run->exit_reason, static_cast<uint32_t>(KVM_EXIT_IO));
  EXPECT_EQ(run->io.port, 0xf4);  // not 0x0ff0 again
  EXPECT_EQ(reinterpret_cast<uint8_t*>(run)[run->io.data_offset], 0x55);
  EXPECT_EQ(vcpu_->regs().rcx & 0xffff, 0x66u);
}

}  // namespace
}  // namespace iovmm
