// The ACPI fixed-hardware PM register block of a PIIX4-style chipset: PM1a event block (PM1_STS, PM1_EN), PM1a
// control block (PM1_CNT) and the PM timer, in one 12-byte I/O window at kPmIoBase (the address QEMU's q35 and
// microvm machines use; the FADT built by boot/ points at these same constants).
//
// Models: PM1_STS with write-1-to-clear bits (TMR_STS set whenever the timer's bit 23 flips, PWRBTN_STS via
// press_power_button()), PM1_EN, PM1_CNT with SCI_EN reading as 1 (there is no SMI_CMD port: the machine is always
// in ACPI mode) and SLP_EN + SLP_TYP == kS5SleepType calling power_off, and the 24-bit PM timer at 3.579545 MHz
// derived from a clock. Any byte, word or dword access inside the block behaves as on hardware: each byte lane
// reaches its register, and a dword timer read samples the clock once.
// Leaves out: sleep states other than S5 (logged and ignored), GPE blocks, the timer-overflow SCI (TMR_STS is
// latched when the guest looks, but no interrupt is raised asynchronously), and PM2/SMI.
// Spec: ACPI 6.5 section 4.8 (fixed hardware registers); Intel 82371AB PIIX4 datasheet, section 7 (PM I/O space).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "io/device.h"
#include "io/register_map.h"

namespace iovmm::devices {

constexpr uint16_t kPmIoBase = 0x600;
constexpr uint64_t kPmRegionSize = 12;
constexpr uint16_t kPm1EventBlockOffset = 0;    // PM1_STS at +0, PM1_EN at +2 (PM1_EVT_LEN = 4)
constexpr uint16_t kPm1ControlBlockOffset = 4;  // PM1_CNT (PM1_CNT_LEN = 2)
constexpr uint16_t kPmTimerBlockOffset = 8;     // PM_TMR (PM_TMR_LEN = 4)
constexpr uint8_t kS5SleepType = 0;             // the SLP_TYP value the DSDT's \_S5 package names
constexpr uint64_t kPmTimerHz = 3579545;

class AcpiPm final : public io::Device {
 public:
  using Clock = std::function<uint64_t()>;  // nanoseconds, monotonic

  // `sci` may be null (no SCI wired). `now_ns` defaults to CLOCK_MONOTONIC; tests inject a fake clock.
  // `power_off` runs on the vCPU thread with the device mutex held; it should only request the stop.
  AcpiPm(std::string name, std::function<void()> power_off, std::shared_ptr<io::IrqLine> sci = nullptr,
         Clock now_ns = {});

  // Host side: the power button was pressed (sets PWRBTN_STS; raises the SCI when PWRBTN_EN is set). Takes the
  // device mutex.
  void press_power_button();

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  [[nodiscard]] uint32_t timer_ticks();  // 24-bit value; also latches TMR_STS
  void write_control(uint16_t value, uint16_t byte_mask);
  void update_sci();

  std::function<void()> power_off_;
  std::shared_ptr<io::IrqLine> sci_;
  Clock now_ns_;
  uint64_t start_ns_;
  io::RegisterMap map_;  // of the register table
  uint64_t timer_epochs_seen_ = 0;  // how many times bit 23 had flipped when the guest last looked

  uint16_t status_ = 0;
  uint16_t enable_ = 0;
  uint16_t control_ = 0;  // stored bits only; SCI_EN and the write-only bits are synthesised
  bool sci_level_ = false;
};

}  // namespace iovmm::devices
