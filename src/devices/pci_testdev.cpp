#include "devices/pci_testdev.h"

#include <algorithm>
#include <mutex>
#include <string_view>

#include "common/log.h"

namespace iovmm::devices {
namespace {

using io::Access;
using io::Effect;
using io::Register;

// QEMU's test names in its order, which is the order of the selector values on each BAR.
constexpr std::array<std::string_view, PciTestdev::kTestsPerBar> kTestNames = {
    "no-eventfd", "wildcard-eventfd", "datamatch-eventfd"};
constexpr unsigned kNoEventfd = 0;
constexpr unsigned kWildcardEventfd = 1;
// The name prefix of each BAR's tests, indexed by BAR number.
constexpr std::array<std::string_view, 2> kBarPrefixes = {"mmio", "portio"};

constexpr uint32_t port_offset(unsigned bar, unsigned number) {
  // QEMU numbers tests across the device (mmio 0..2, portio 3..5) and places test i at its BAR's port base + i.
  unsigned device_wide = bar * PciTestdev::kTestsPerBar + number;
  return (bar == PciTestdev::kMmioBar ? PciTestdev::kMmioPortBase : PciTestdev::kPioPortBase) + device_wide;
}
constexpr uint8_t test_data(unsigned number) {
  return number == kWildcardEventfd ? PciTestdev::kNonMatchingData : PciTestdev::kMatchingData;
}

constexpr Register port_register(std::string_view name, unsigned bar, unsigned number) {
  // `doorbell_value` carries the test's data byte: what the dispatch layer hands doorbell() for a wildcard doorbell.
  return Register{.name = name, .offset = port_offset(bar, number), .width = 1, .access = Access::wo,
                  .effect = Effect::latch, .lockless_read = false, .doorbell_value = test_data(number)};
}

// One BAR's table: the header (same offsets on both BARs) and that BAR's three test ports. Every header read comes
// from fixed per-test bytes or atomics, hence lockless_read; the header comment says why they are "synchronous".
constexpr std::array<Register, 9> bar_registers(unsigned bar) {
  return {
      Register{.name = "test", .offset = PciTestdev::kTestField, .width = 1, .access = Access::rw,
               .effect = Effect::synchronous, .lockless_read = true},
      Register{.name = "width", .offset = PciTestdev::kWidthField, .width = 1, .access = Access::ro,
               .effect = Effect::synchronous, .lockless_read = true},
      Register{.name = "offset", .offset = PciTestdev::kOffsetField, .width = 4, .access = Access::ro,
               .effect = Effect::synchronous, .lockless_read = true},
      Register{.name = "data", .offset = PciTestdev::kDataField, .width = 4, .access = Access::ro,
               .effect = Effect::synchronous, .lockless_read = true},
      Register{.name = "count", .offset = PciTestdev::kCountField, .width = 4, .access = Access::ro,
               .effect = Effect::synchronous, .lockless_read = true},
      Register{.name = "name", .offset = PciTestdev::kNameField, .width = PciTestdev::kNameFieldSize,
               .access = Access::ro, .effect = Effect::synchronous, .lockless_read = true},
      port_register("port_no_eventfd", bar, 0),
      port_register("port_wildcard_eventfd", bar, 1),
      port_register("port_datamatch_eventfd", bar, 2),
  };
}
constexpr auto kMmioRegisters = bar_registers(PciTestdev::kMmioBar);
constexpr auto kPioRegisters = bar_registers(PciTestdev::kPioBar);

constexpr std::array<io::RegisterBlock, 2> kRegisterBlocks = {
    io::RegisterBlock{.region = PciTestdev::kMmioBar, .name = "mmio", .registers = kMmioRegisters},
    io::RegisterBlock{.region = PciTestdev::kPioBar, .name = "pio", .registers = kPioRegisters},
};

constexpr uint64_t bar_size(unsigned bar) {
  return bar == PciTestdev::kMmioBar ? PciTestdev::kMmioBarSize : PciTestdev::kPioBarSize;
}

PciIdentity testdev_identity() {
  return PciIdentity{.vendor_id = PciTestdev::kVendorId,
                     .device_id = PciTestdev::kDeviceId,
                     .revision = PciTestdev::kRevision,
                     .class_code = PciTestdev::kClassCode,
                     .subsystem_vendor_id = 0x1af4,  // QEMU's default subsystem, as for every device it names none
                     .subsystem_id = 0x1100,
                     .interrupt_pin = 0,  // QEMU clears it: the device never interrupts
                     .status = 0};
}

}  // namespace

PciTestdev::PciTestdev(std::string name, Options options)
    : PciDevice(std::move(name), testdev_identity(),
                {BarSpec{.index = kMmioBar, .size = kMmioBarSize, .kind = BarKind::mem32, .prefetchable = false},
                 BarSpec{.index = kPioBar, .size = kPioBarSize, .kind = BarKind::io, .prefetchable = false}}),
      tests_(build_tests(options)) {}

PciTestdev::~PciTestdev() {
  std::lock_guard lock(mutex());
  remove_selected_doorbell();
}

std::array<PciTestdev::Test, PciTestdev::kTestCount> PciTestdev::build_tests(const Options& options) {
  std::array<Test, kTestCount> tests{};
  for (unsigned bar : {kMmioBar, kPioBar}) {
    for (unsigned number = 0; number < kTestsPerBar; ++number) {
      unsigned device_wide = bar * kTestsPerBar + number;
      Test& test = tests[device_wide];
      test.bar = bar;
      test.port_offset = port_offset(bar, number);
      test.data = test_data(number);
      test.match_data = number != kWildcardEventfd;
      test.has_doorbell = number != kNoEventfd;
      test.doorbell_size = (options.any_length_mmio_wildcard && bar == kMmioBar && !test.match_data) ? 0 : 1;

      auto& h = test.header;
      h[kTestField] = static_cast<uint8_t>(device_wide);
      h[kWidthField] = 1;  // every QEMU test writes single bytes
      for (unsigned i = 0; i < 4; ++i) h[kOffsetField + i] = static_cast<uint8_t>(test.port_offset >> (8 * i));
      h[kDataField] = test.data;
      // The count bytes stay 0 here: they are read from count_.
      std::string_view prefix = kBarPrefixes[bar];
      std::string_view suffix = kTestNames[number];
      auto* name = h.data() + kNameField;
      name = std::copy(prefix.begin(), prefix.end(), name);
      *name++ = '-';
      name = std::copy(suffix.begin(), suffix.end(), name);
      *name++ = '\0';
      test.header_size = static_cast<unsigned>(name - h.data());
    }
  }
  return tests;
}

std::span<const io::RegisterBlock> PciTestdev::register_blocks() const { return kRegisterBlocks; }

std::optional<unsigned> PciTestdev::selected_test() const {
  int selected = selected_.load(std::memory_order_acquire);
  if (selected == kNoTest) return std::nullopt;
  return static_cast<unsigned>(selected);
}

uint8_t PciTestdev::header_byte(int test, uint64_t offset, uint32_t count) const {
  if (test == kNoTest) return 0;  // QEMU: nothing selected reads 0 everywhere
  if (offset >= kCountField && offset < kCountField + 4) {
    return static_cast<uint8_t>(count >> (8 * (offset - kCountField)));
  }
  const Test& t = tests_[static_cast<unsigned>(test)];
  return offset < t.header_size ? t.header[offset] : 0;
}

uint64_t PciTestdev::compose_read(uint64_t offset, unsigned size) const {
  // One snapshot of the selection and the count for the whole access, so a dword read of `count` is one value.
  int test = selected_.load(std::memory_order_acquire);
  uint32_t count = count_.load(std::memory_order_acquire);
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint64_t{header_byte(test, offset + i, count)} << (8 * i);
  return value;
}

uint64_t PciTestdev::read_lockless(unsigned region, uint64_t offset, unsigned size) {
  if (region > kPioBar || !io::valid_access_size(size) || offset + size > bar_size(region)) return ~0ull;
  return compose_read(offset, size);
}

uint64_t PciTestdev::bar_read(unsigned bar, uint64_t offset, unsigned size) {
  if (bar > kPioBar || !io::valid_access_size(size) || offset + size > bar_size(bar)) return ~0ull;
  // A read that shows `count` must include writes KVM has already turned into eventfd signals: they happened
  // before this read (the signal is raised during the guest's write), the event loop just has not delivered them.
  if (offset < kCountField + 4 && offset + size > kCountField) take_pending_signals();
  return compose_read(offset, size);
}

void PciTestdev::bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
  if (bar > kPioBar || !io::valid_access_size(size) || offset + size > bar_size(bar)) return;
  if (offset > kTestField && offset < kNameField + kNameFieldSize) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write of {:#x} to read-only header byte {:#x} of BAR{} ignored", name(), size,
                          value, offset, bar);
  }
  // QEMU's memory core hands this device one byte at a time, in ascending address order; do the same so that wider
  // accesses behave identically (a word write counts when its low byte lands on the test's offset with `data`).
  for (unsigned i = 0; i < size; ++i) write_byte(bar, offset + i, static_cast<uint8_t>(value >> (8 * i)));
}

void PciTestdev::write_byte(unsigned bar, uint64_t offset, uint8_t value) {
  if (offset == kTestField) {
    select(bar, value);
    return;
  }
  int selected = selected_.load(std::memory_order_relaxed);
  if (selected == kNoTest) return;
  const Test& test = tests_[static_cast<unsigned>(selected)];
  // Like QEMU, the offset is compared whatever BAR the write came through: the selection is device-wide.
  if (offset != test.port_offset) return;
  if (test.match_data && value != test.data) return;
  count_.fetch_add(1, std::memory_order_acq_rel);
}

void PciTestdev::select(unsigned bar, uint8_t number) {
  // Any write to `test` ends the current test first, even one that selects nothing (QEMU's reset-then-start).
  remove_selected_doorbell();
  selected_.store(kNoTest, std::memory_order_release);
  // Not logged: enumerating tests until one reads width 0 is how guests (kvm-unit-tests' vmexit) find the last.
  if (number >= kTestsPerBar) return;
  count_.store(0, std::memory_order_release);
  selected_.store(static_cast<int>(bar * kTestsPerBar + number), std::memory_order_release);
  add_selected_doorbell();
}

void PciTestdev::add_selected_doorbell() {
  int selected = selected_.load(std::memory_order_relaxed);
  if (!doorbell_host_ || selected == kNoTest) return;
  const Test& test = tests_[static_cast<unsigned>(selected)];
  if (!test.has_doorbell) return;
  std::optional<uint64_t> datamatch;
  if (test.match_data) datamatch = test.data;
  // On demand: the hits are only ever observed through `count`, which takes them (like QEMU, where nobody reads
  // this eventfd, no thread wakes per write).
  doorbell_handle_ = doorbell_host_->add_doorbell(*this, test.bar, test.port_offset, test.doorbell_size, datamatch,
                                                  io::DoorbellDelivery::on_demand);
}

void PciTestdev::remove_selected_doorbell() {
  if (doorbell_handle_ == kNoHandle) return;
  if (doorbell_host_) doorbell_host_->remove_doorbell(doorbell_handle_);
  doorbell_handle_ = kNoHandle;
}

void PciTestdev::take_pending_signals() {
  if (!doorbell_host_ || doorbell_handle_ == kNoHandle) return;
  uint64_t pending = doorbell_host_->take_pending(doorbell_handle_);
  if (pending) count_.fetch_add(static_cast<uint32_t>(pending), std::memory_order_acq_rel);
}

void PciTestdev::doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) {
  (void)size;  // 1, or 0 for an any-length doorbell: the offset identifies the test either way
  // A delivery for a doorbell that has since been removed must not count against the test selected after it.
  int selected = selected_.load(std::memory_order_relaxed);
  if (doorbell_handle_ == kNoHandle || selected == kNoTest) return;
  const Test& test = tests_[static_cast<unsigned>(selected)];
  if (region != test.bar || offset != test.port_offset) return;
  if (test.match_data && (value & 0xFF) != test.data) return;
  count_.fetch_add(static_cast<uint32_t>(count), std::memory_order_acq_rel);
}

void PciTestdev::set_doorbell_host(io::DoorbellHost* host) {
  std::lock_guard lock(mutex());
  remove_selected_doorbell();
  doorbell_host_ = host;
  add_selected_doorbell();
}

}  // namespace iovmm::devices
