#include "devices/acpi_pm.h"

#include <time.h>

#include <array>

#include "common/log.h"

namespace iovmm::devices {
namespace {
// PM1 status/enable drive the SCI, PM1 control can power off, and reading the timer updates TMR_STS: all act at
// once.
constexpr io::Register kAcpiPmRegisters[] = {
    {"pm1_sts", 0, 2, io::Access::w1c, io::Effect::synchronous},
    {"pm1_en", 2, 2, io::Access::rw, io::Effect::synchronous},
    {"pm1_cnt", 4, 2, io::Access::rw, io::Effect::synchronous, 1},
    {"pm_tmr", 8, 4, io::Access::ro, io::Effect::read_sensitive},
};
constexpr io::RegisterBlock kAcpiPmBlocks[] = {{0, "pm", kAcpiPmRegisters}};
}  // namespace

namespace {

constexpr uint16_t kStsTimer = 1u << 0;
constexpr uint16_t kStsBusMaster = 1u << 4;
constexpr uint16_t kStsGlobal = 1u << 5;
constexpr uint16_t kStsPowerButton = 1u << 8;
constexpr uint16_t kStsSleepButton = 1u << 9;
constexpr uint16_t kStsRtc = 1u << 10;
constexpr uint16_t kStsWake = 1u << 15;
constexpr uint16_t kStsDefined =
    kStsTimer | kStsBusMaster | kStsGlobal | kStsPowerButton | kStsSleepButton | kStsRtc | kStsWake;

constexpr uint16_t kEnTimer = 1u << 0;
constexpr uint16_t kEnGlobal = 1u << 5;
constexpr uint16_t kEnPowerButton = 1u << 8;
constexpr uint16_t kEnSleepButton = 1u << 9;
constexpr uint16_t kEnRtc = 1u << 10;
constexpr uint16_t kEnDefined = kEnTimer | kEnGlobal | kEnPowerButton | kEnSleepButton | kEnRtc;

constexpr uint16_t kCntSciEnable = 1u << 0;
constexpr uint16_t kCntBusMasterReload = 1u << 1;
constexpr uint16_t kCntSleepTypeShift = 10;
constexpr uint16_t kCntSleepTypeMask = 7u << kCntSleepTypeShift;
constexpr uint16_t kCntSleepEnable = 1u << 13;
constexpr uint16_t kCntStored = kCntBusMasterReload | kCntSleepTypeMask;  // GBL_RLS and SLP_EN read as 0

constexpr uint32_t kTimerMask = 0xFFFFFF;

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Which bytes of the 16-bit register at `reg` an access [offset, offset+size) touches, and their values lined up
// with the register: the hardware decodes each byte lane separately.
struct Lanes {
  uint16_t value = 0;
  uint16_t mask = 0;
};
Lanes lanes_for(uint64_t reg, uint64_t offset, unsigned size, uint64_t value) {
  Lanes lanes;
  for (unsigned i = 0; i < size; ++i) {
    uint64_t byte_addr = offset + i;
    if (byte_addr < reg || byte_addr >= reg + 2) continue;
    unsigned lane = static_cast<unsigned>(byte_addr - reg);
    lanes.value |= static_cast<uint16_t>(((value >> (8 * i)) & 0xFF) << (8 * lane));
    lanes.mask |= static_cast<uint16_t>(0xFF << (8 * lane));
  }
  return lanes;
}

}  // namespace

AcpiPm::AcpiPm(std::string name, std::function<void()> power_off, std::shared_ptr<io::IrqLine> sci, Clock now_ns)
    : io::Device(std::move(name)),
      power_off_(std::move(power_off)),
      sci_(std::move(sci)),
      now_ns_(now_ns ? std::move(now_ns) : Clock(monotonic_ns)),
      start_ns_(now_ns_()) {}

uint32_t AcpiPm::timer_ticks() {
  uint64_t elapsed = now_ns_() - start_ns_;
  // 128-bit product: elapsed * 3.58 MHz overflows 64 bits after about 1.6 hours of nanoseconds.
  auto ticks = static_cast<uint64_t>(static_cast<unsigned __int128>(elapsed) * kPmTimerHz / 1'000'000'000u);
  uint64_t epochs = ticks >> 23;  // TMR_STS is set each time bit 23 of the counter changes
  if (epochs != timer_epochs_seen_) {
    timer_epochs_seen_ = epochs;
    status_ |= kStsTimer;
    update_sci();
  }
  return static_cast<uint32_t>(ticks) & kTimerMask;
}

void AcpiPm::press_power_button() {
  std::lock_guard lock(mutex());
  status_ |= kStsPowerButton;
  update_sci();
}

uint64_t AcpiPm::read(unsigned region, uint64_t offset, unsigned size) {
  if (region != 0) return ~0ull;
  // Lay the block out as bytes, sampling the timer once so a dword read sees one consistent value. The sample
  // also latches TMR_STS, so a guest polling PM1_STS sees the overflow without reading the timer itself.
  uint32_t timer = timer_ticks();
  uint16_t control = static_cast<uint16_t>((control_ & kCntStored) | kCntSciEnable);
  std::array<uint8_t, kPmRegionSize> block = {
      static_cast<uint8_t>(status_), static_cast<uint8_t>(status_ >> 8),
      static_cast<uint8_t>(enable_), static_cast<uint8_t>(enable_ >> 8),
      static_cast<uint8_t>(control), static_cast<uint8_t>(control >> 8),
      0, 0,  // reserved bytes between PM1_CNT and PM_TMR
      static_cast<uint8_t>(timer), static_cast<uint8_t>(timer >> 8), static_cast<uint8_t>(timer >> 16), 0,
  };
  uint64_t value = 0;
  for (unsigned i = 0; i < size && offset + i < kPmRegionSize; ++i) value |= uint64_t{block[offset + i]} << (8 * i);
  return value;
}

void AcpiPm::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0) return;
  Lanes status = lanes_for(kPm1EventBlockOffset, offset, size, value);
  if (status.mask) {
    status_ &= static_cast<uint16_t>(~(status.value & status.mask & kStsDefined));  // write 1 to clear
  }
  Lanes enable = lanes_for(kPm1EventBlockOffset + 2, offset, size, value);
  if (enable.mask) {
    enable_ = static_cast<uint16_t>((enable_ & ~enable.mask) | (enable.value & enable.mask & kEnDefined));
  }
  if (status.mask || enable.mask) update_sci();
  Lanes control = lanes_for(kPm1ControlBlockOffset, offset, size, value);
  if (control.mask) write_control(control.value, control.mask);
  // PM_TMR is read-only and the reserved bytes decode nothing: writes there are dropped.
}

void AcpiPm::write_control(uint16_t value, uint16_t byte_mask) {
  control_ = static_cast<uint16_t>((control_ & ~byte_mask) | (value & byte_mask & kCntStored));
  if (!(value & byte_mask & kCntSleepEnable)) return;
  auto sleep_type = static_cast<uint8_t>((control_ & kCntSleepTypeMask) >> kCntSleepTypeShift);
  if (sleep_type == kS5SleepType) {
    if (power_off_) power_off_();
    return;
  }
  IOVMM_LOG_RATELIMITED("{}: guest requested sleep type {} (only S5 = {} is supported): ignored", name(),
                        sleep_type, kS5SleepType);
}

void AcpiPm::update_sci() {
  bool level = (status_ & enable_ & (kStsTimer | kStsGlobal | kStsPowerButton | kStsSleepButton | kStsRtc)) != 0;
  if (level == sci_level_) return;
  sci_level_ = level;
  if (sci_) sci_->set_level(level);
}

std::span<const io::RegisterBlock> AcpiPm::register_blocks() const { return kAcpiPmBlocks; }

}  // namespace iovmm::devices
