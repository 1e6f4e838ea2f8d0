#include "devices/acpi_pm.h"

#include <time.h>

#include <array>
#include <string_view>

#include "common/log.h"

namespace iovmm::devices {
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

// The rows' ids (io::Register::id).
enum class Reg : uint16_t { pm1_sts, pm1_en, pm1_cnt, pm_tmr };

constexpr io::Register reg(std::string_view name, Reg id, uint64_t offset, unsigned width, io::Access access,
                           io::Effect effect, uint64_t reset = 0) {
  return io::Register{.name = name, .offset = offset, .width = width, .access = access, .effect = effect,
                      .reset_value = reset, .id = static_cast<uint16_t>(id)};
}

// PM1 status/enable drive the SCI, PM1 control can power off, and reading the timer updates TMR_STS: all act at
// once. The offsets are the FADT's (acpi_pm.h).
constexpr io::Register kAcpiPmRegisters[] = {
    reg("pm1_sts", Reg::pm1_sts, kPm1EventBlockOffset, 2, io::Access::w1c, io::Effect::synchronous),
    reg("pm1_en", Reg::pm1_en, kPm1EventBlockOffset + 2, 2, io::Access::rw, io::Effect::synchronous),
    reg("pm1_cnt", Reg::pm1_cnt, kPm1ControlBlockOffset, 2, io::Access::rw, io::Effect::synchronous, kCntSciEnable),
    reg("pm_tmr", Reg::pm_tmr, kPmTimerBlockOffset, 4, io::Access::ro, io::Effect::read_sensitive),
};
constexpr io::RegisterBlock kAcpiPmBlocks[] = {{0, "pm", kAcpiPmRegisters}};

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The bytes of one register that an access wrote, lined up with the register: the hardware decodes each byte lane
// separately.
struct Lanes {
  uint32_t value = 0;
  uint32_t mask = 0;
};

}  // namespace

AcpiPm::AcpiPm(std::string name, std::function<void()> power_off, std::shared_ptr<io::IrqLine> sci, Clock now_ns)
    : io::Device(std::move(name)),
      power_off_(std::move(power_off)),
      sci_(std::move(sci)),
      now_ns_(now_ns ? std::move(now_ns) : Clock(monotonic_ns)),
      start_ns_(now_ns_()),
      map_(kAcpiPmRegisters) {}

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
  // The timer is sampled once, so a dword read sees one consistent value. The sample also latches TMR_STS, so a
  // guest polling PM1_STS sees the overflow without reading the timer itself.
  uint32_t timer = timer_ticks();
  return io::compose(map_, offset, size, [&](const io::Register& row) -> uint64_t {
    switch (static_cast<Reg>(row.id)) {
      case Reg::pm1_sts: return status_;
      case Reg::pm1_en: return enable_;
      case Reg::pm1_cnt: return (control_ & kCntStored) | kCntSciEnable;
      case Reg::pm_tmr: return timer;
    }
    return 0;
  });
}

void AcpiPm::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0) return;
  std::array<Lanes, std::size(kAcpiPmRegisters)> lanes{};  // by register id
  for (unsigned i = 0; i < size; ++i) {
    const io::Register* row = map_.find(offset + i, 1);
    if (!row) continue;  // the reserved bytes decode nothing
    unsigned lane = static_cast<unsigned>(offset + i - row->offset);
    lanes[row->id].value |= static_cast<uint32_t>(((value >> (8 * i)) & 0xFF) << (8 * lane));
    lanes[row->id].mask |= 0xFFu << (8 * lane);
  }
  const Lanes& status = lanes[static_cast<size_t>(Reg::pm1_sts)];
  const Lanes& enable = lanes[static_cast<size_t>(Reg::pm1_en)];
  const Lanes& control = lanes[static_cast<size_t>(Reg::pm1_cnt)];
  if (status.mask) {
    status_ &= static_cast<uint16_t>(~(status.value & status.mask & kStsDefined));  // write 1 to clear
  }
  if (enable.mask) {
    enable_ = static_cast<uint16_t>((enable_ & ~enable.mask) | (enable.value & enable.mask & kEnDefined));
  }
  if (status.mask || enable.mask) update_sci();
  if (control.mask) write_control(static_cast<uint16_t>(control.value), static_cast<uint16_t>(control.mask));
  // PM_TMR is read-only: writes there are dropped.
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
