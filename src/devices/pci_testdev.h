// QEMU's pci-testdev (PCI 1b36:0005): a function whose only purpose is to be written to, so that a guest can time
// MMIO and port I/O exits — plain, and turned into KVM ioeventfds — and the same guest measures the same thing under
// QEMU and iovmm.
//
// Models, as QEMU 7.2 does (hw/misc/pci-testdev.c; docs/specs/pci-testdev.rst):
//   - BAR0: 4 KiB 32-bit memory ("mmio"), BAR1: 256 bytes of I/O ("pio"); no interrupt pin; class 0x00ff00.
//   - Six tests, three per BAR in QEMU's order: 0 no-eventfd, 1 wildcard-eventfd, 2 datamatch-eventfd. Writing n
//     to the `test` byte of BAR b selects test 3*b + n; any other n (3..255) deselects. There is ONE selected test
//     per device, not one per BAR: both BARs read the selected test's header, and a write at the selected test's
//     offset counts on either BAR.
//   - The header at the start of each BAR (all little-endian):
//       0x00 u8  test    reads the selected test's device-wide number (0..5: pio tests read 3..5); write: select
//       0x01 u8  width   1 (QEMU's tests all write bytes)
//       0x02 u8  pad[2]  0
//       0x04 u32 offset  where the test's writes go: mmio 0x800 + n, pio 0x80 + 3 + n (the device-wide number)
//       0x08 u8  data    0xFA, or 0xCE for wildcard-eventfd (the value that does NOT match); 3 bytes of 0 follow
//       0x0C u32 count   writes counted since the test was selected
//       0x10 char name[] "mmio-no-eventfd" ... "portio-datamatch-eventfd", NUL-terminated
//     Every byte past the name, and every byte while no test is selected, reads 0.
//   - Every access is taken apart into bytes, as QEMU's memory core does for this device (it accepts only 1-byte
//     accesses): a dword read of `count` is four byte reads; a write counts when one of its bytes lands on the test's
//     offset and, except for wildcard-eventfd, that byte equals `data` — no-eventfd is a datamatch test too.
//   - Selecting a test resets its count; selecting an eventfd test asks the DoorbellHost for a KVM ioeventfd on its
//     offset (1 byte; datamatch = data for datamatch-eventfd), removed when anything is written to `test` again.
//
// Differs from QEMU on purpose: QEMU reads and discards the eventfd, so `count` stays 0 for eventfd tests; iovmm
// counts exactly — a read that covers `count` first takes the signals KVM has raised and not yet delivered
// (DoorbellHost::take_pending), and doorbell() adds what the event loop delivers. A guest written for QEMU accepts
// either ("count is 0 or the number of writes", as kvm-unit-tests checks).
//
// Register table (register_blocks(), one block per BAR, "mmio" = region 0 and "pio" = region 1):
//   test       rw  synchronous  selecting registers/removes a doorbell, which the very next write depends on;
//                               its reads are lockless (an atomic)
//   width, offset, data, name
//              ro  synchronous  not constant: they change with the selection, so the table may not answer them;
//                               they are read-only (writes are dropped), so nothing is gained by coalescing
//                               them. Their bytes are immutable per test and the selection is an atomic, so the
//                               device answers them without its lock (lockless_read): fastpath is legal.
//   count      ro  synchronous  lockless_read: an atomic. A fastpath (lock-free) read does NOT take pending
//                               eventfd signals (that needs the lock), nor does it wait for a coalesced ring to
//                               drain: it returns what has been delivered so far.
//   port_no_eventfd, port_wildcard_eventfd, port_datamatch_eventfd
//              wo  latch        a write only bumps a counter that a later read of `count` observes: coalescable.
//                               `doorbell_value` holds the test's data byte (what a wildcard doorbell delivers).
//
// Off by default: QEMU 7.2 registers mmio-wildcard-eventfd's ioeventfd with length 0 (any access width, KVM's
// fast-MMIO bus) when KVM has KVM_CAP_IOEVENTFD_ANY_LENGTH. PciTestdevOptions::any_length_mmio_wildcard asks the
// DoorbellHost for size 0 likewise; the machine turns it on when its host and KVM support that.
// Leaves out: QEMU's optional `membar` BAR2 (absent by default) and device reset other than deselection.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "devices/pci/pci_device.h"
#include "io/doorbell.h"
#include "io/registers.h"

namespace iovmm::devices {

struct PciTestdevOptions {
  // Register mmio-wildcard-eventfd's doorbell with size 0 (KVM: any access length), as QEMU 7.2 does when KVM has
  // KVM_CAP_IOEVENTFD_ANY_LENGTH. Only for a DoorbellHost that accepts size 0.
  bool any_length_mmio_wildcard = false;
};

class PciTestdev final : public PciDevice,
                         public io::LocklessReads,
                         public io::DoorbellSink,
                         public io::Quiescent {
 public:
  static constexpr uint16_t kVendorId = 0x1b36;  // Red Hat, Inc.
  static constexpr uint16_t kDeviceId = 0x0005;  // QEMU PCI test device
  static constexpr uint8_t kRevision = 0x00;
  static constexpr uint32_t kClassCode = 0x00ff00;  // QEMU's PCI_CLASS_OTHERS (0xff) written as a 16-bit class

  static constexpr unsigned kMmioBar = 0;
  static constexpr unsigned kPioBar = 1;
  static constexpr uint64_t kMmioBarSize = 0x1000;
  static constexpr uint64_t kPioBarSize = 0x100;

  // Header fields, at the same offsets in both BARs.
  static constexpr unsigned kTestField = 0x00;
  static constexpr unsigned kWidthField = 0x01;
  static constexpr unsigned kOffsetField = 0x04;
  static constexpr unsigned kDataField = 0x08;
  static constexpr unsigned kCountField = 0x0C;
  static constexpr unsigned kNameField = 0x10;
  // The name field as declared in the register table: up to where the pio tests' ports begin, far longer than any
  // name (the longest, "portio-datamatch-eventfd", takes 25 bytes with its NUL).
  static constexpr unsigned kNameFieldSize = 0x70;

  static constexpr unsigned kTestsPerBar = 3;  // QEMU's: no-eventfd, wildcard-eventfd, datamatch-eventfd
  static constexpr unsigned kTestCount = 2 * kTestsPerBar;
  static constexpr uint8_t kMatchingData = 0xFA;     // QEMU's IOTEST_DATAMATCH
  static constexpr uint8_t kNonMatchingData = 0xCE;  // QEMU's IOTEST_NOMATCH, shown by wildcard-eventfd
  // Where a BAR's test ports start: past the header, at half the BAR (QEMU's IOTEST_MEMSIZE / IOTEST_IOSIZE).
  static constexpr uint32_t kMmioPortBase = 0x800;
  static constexpr uint32_t kPioPortBase = 0x80;

  using Options = PciTestdevOptions;

  explicit PciTestdev(std::string name = "pci-testdev", Options options = {});
  // Removes the selected test's doorbell, if any, from the host, which must therefore outlive the device (or be
  // detached first with set_doorbell_host(nullptr)).
  ~PciTestdev() override;

  // Where eventfd tests get their doorbells. Null (the default, and unit tests) means the test's writes keep
  // arriving through write() and are counted there. Changing the host moves the selected test's doorbell. Takes
  // the device mutex.
  void set_doorbell_host(io::DoorbellHost* host);
  void quiesce() override { set_doorbell_host(nullptr); }

  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) override;

  // A read made WITHOUT the device mutex (the fastpath): the same bytes as read(), except that pending eventfd
  // signals are not taken into `count` (DoorbellHost::take_pending needs the mutex). Safe for any offset: the
  // selection and the count are atomics and every other byte is fixed per test. The bus's fastpath must call this,
  // not read(): read() catches up on pending signals and assumes the lock.
  [[nodiscard]] uint64_t read_lockless(unsigned region, uint64_t offset, unsigned size) override;

  // Inspection (tests, statistics): the selected test's device-wide number, and its count without catch-up.
  [[nodiscard]] std::optional<unsigned> selected_test() const;
  [[nodiscard]] uint32_t delivered_count() const { return count_.load(std::memory_order_acquire); }

 protected:
  [[nodiscard]] uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size) override;
  void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  // One test's fixed description and the header bytes a guest reads for it (count excepted: it lives in count_).
  struct Test {
    unsigned bar = 0;
    uint32_t port_offset = 0;
    uint8_t data = 0;
    bool match_data = true;    // only writes of `data` count (all but wildcard-eventfd)
    bool has_doorbell = false;  // an eventfd test
    unsigned doorbell_size = 1;  // 0: any length (Options::any_length_mmio_wildcard)
    std::array<uint8_t, kNameField + kNameFieldSize> header{};
    unsigned header_size = 0;  // bytes up to and including the name's NUL; later bytes read 0
  };

  static constexpr int kNoTest = -1;
  static constexpr int kNoHandle = io::DoorbellHost::kNoDoorbell;

  [[nodiscard]] static std::array<Test, kTestCount> build_tests(const Options& options);
  // The byte the guest reads at `offset` of either BAR, from the selection snapshot `test` (kNoTest: none).
  [[nodiscard]] uint8_t header_byte(int test, uint64_t offset, uint32_t count) const;
  [[nodiscard]] uint64_t compose_read(uint64_t offset, unsigned size) const;
  void write_byte(unsigned bar, uint64_t offset, uint8_t value);
  void select(unsigned bar, uint8_t number);
  void add_selected_doorbell();
  void remove_selected_doorbell();
  // Adds the signals KVM raised for the selected test's doorbell and nobody has delivered yet. Needs the mutex.
  void take_pending_signals();

  const std::array<Test, kTestCount> tests_;
  io::DoorbellHost* doorbell_host_ = nullptr;
  int doorbell_handle_ = kNoHandle;
  // Read by read_lockless without the mutex; changed only with it held. count_ is stored before selected_ when a
  // test is selected, so a lock-free reader that sees the new test never sees the previous test's count.
  std::atomic<int> selected_{kNoTest};
  std::atomic<uint32_t> count_{0};  // QEMU's le32 count: wraps at 2^32
};

}  // namespace iovmm::devices
