// The ACPI PM register block through a port I/O bus, with an injected clock for the PM timer.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "devices/acpi_pm.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

constexpr uint64_t kSts = kPmIoBase + 0;
constexpr uint64_t kEn = kPmIoBase + 2;
constexpr uint64_t kCnt = kPmIoBase + 4;
constexpr uint64_t kTmr = kPmIoBase + 8;
constexpr uint64_t kSecond = 1'000'000'000;

class RecordingIrq : public io::IrqLine {
 public:
  void set_level(bool asserted) override { levels.push_back(asserted); }
  std::vector<bool> levels;
};

class DevAcpiPmTest : public ::testing::Test {
 protected:
  DevAcpiPmTest() {
    pm_ = std::make_shared<AcpiPm>("acpi-pm", [this] { ++power_offs_; }, sci_, [this] { return now_ns_; });
    bus_.map(io::Window{.base = kPmIoBase, .size = kPmRegionSize, .device = pm_, .region = 0, .label = "acpi-pm"});
  }
  uint64_t in(uint64_t port, unsigned size) {
    uint64_t value = 0;
    EXPECT_EQ(bus_.read(port, size, value), io::AccessResult::ok);
    return value;
  }
  void out(uint64_t port, unsigned size, uint64_t value) {
    EXPECT_EQ(bus_.write(port, size, value), io::AccessResult::ok);
  }

  uint64_t now_ns_ = 123 * kSecond;  // an arbitrary boot-time clock value
  int power_offs_ = 0;
  std::shared_ptr<RecordingIrq> sci_ = std::make_shared<RecordingIrq>();
  io::Bus bus_{io::Space::pio};
  std::shared_ptr<AcpiPm> pm_;
};

TEST_F(DevAcpiPmTest, ConstantsMatchTheBlockLayout) {
  EXPECT_EQ(kPmIoBase, 0x600);
  EXPECT_EQ(kPmRegionSize, 12u);
  EXPECT_EQ(kPmTimerHz, 3579545u);
  EXPECT_EQ(kS5SleepType, 0);
}

TEST_F(DevAcpiPmTest, TimerCountsAt3579545Hz) {
  EXPECT_EQ(in(kTmr, 4), 0u);
  now_ns_ += kSecond;
  EXPECT_EQ(in(kTmr, 4), 3579545u);
  now_ns_ += kSecond / 1000;  // 1.001 s: floor(1.001 * 3579545) = 3583124
  EXPECT_EQ(in(kTmr, 4), 3583124u);
  now_ns_ += 279;  // one tick is 279.37 ns
  EXPECT_EQ(in(kTmr, 4), 3583125u);
}

TEST_F(DevAcpiPmTest, TimerWrapsAt24Bits) {
  now_ns_ += 5 * kSecond;  // 17897725 ticks
  EXPECT_EQ(in(kTmr, 4), 17897725u - (1u << 24));
  now_ns_ += 3600 * kSecond;  // an hour later the 64-bit tick product must not overflow
  uint64_t ticks = (3605ull * 3579545ull) & 0xFFFFFF;
  EXPECT_EQ(in(kTmr, 4), ticks);
  now_ns_ += 1'000'000 * kSecond;  // days of uptime
  EXPECT_EQ(in(kTmr, 4), ((1'003'605ull * 3579545ull) & 0xFFFFFF));
}

TEST_F(DevAcpiPmTest, TimerBytesAndWordsReadLikeHardware) {
  now_ns_ += 4 * kSecond;  // 14318180 = 0xDA7A64
  EXPECT_EQ(in(kTmr, 4), 0xDA7A64u);
  EXPECT_EQ(in(kTmr, 1), 0x64u);
  EXPECT_EQ(in(kTmr + 1, 1), 0x7Au);
  EXPECT_EQ(in(kTmr + 2, 1), 0xDAu);
  EXPECT_EQ(in(kTmr + 3, 1), 0x00u);
  EXPECT_EQ(in(kTmr, 2), 0x7A64u);
  EXPECT_EQ(in(kTmr + 2, 2), 0x00DAu);
  out(kTmr, 4, 0);  // read-only
  EXPECT_EQ(in(kTmr, 4), 0xDA7A64u);
}

TEST_F(DevAcpiPmTest, TimerCarryOutOfBit23SetsTmrSts) {
  EXPECT_EQ(in(kSts, 2) & 1, 0u);
  now_ns_ += 2 * kSecond;  // 7159090 < 2^23
  (void)in(kTmr, 4);
  EXPECT_EQ(in(kSts, 2) & 1, 0u);
  now_ns_ += kSecond;  // 10738635 >= 2^23: bit 23 flipped
  EXPECT_EQ(in(kSts, 2) & 1, 1u);
  out(kSts, 2, 0x0001);
  EXPECT_EQ(in(kSts, 2) & 1, 0u);
}

TEST_F(DevAcpiPmTest, StatusBitsAreWriteOneToClear) {
  pm_->press_power_button();
  EXPECT_EQ(in(kSts, 2), 0x0100u);
  out(kSts, 2, 0x0000);
  EXPECT_EQ(in(kSts, 2), 0x0100u) << "writing 0 leaves the bit";
  out(kSts, 2, 0xFEFF);
  EXPECT_EQ(in(kSts, 2), 0x0100u) << "writing 1 elsewhere leaves it too";
  out(kSts + 1, 1, 0x01);  // byte write to the high lane
  EXPECT_EQ(in(kSts, 2), 0x0000u);
  pm_->press_power_button();
  out(kSts, 4, 0x00000100);  // dword write over PM1_STS and PM1_EN clears STS and writes EN = 0
  EXPECT_EQ(in(kSts, 2), 0x0000u);
}

TEST_F(DevAcpiPmTest, EnableRegisterHoldsDefinedBits) {
  out(kEn, 2, 0xFFFF);
  EXPECT_EQ(in(kEn, 2), 0x0721u);  // TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN
  out(kEn + 1, 1, 0x00);
  EXPECT_EQ(in(kEn, 2), 0x0021u);
  EXPECT_EQ(in(kSts, 4), 0x00210000u) << "a dword read spans STS and EN";
}

TEST_F(DevAcpiPmTest, PowerButtonRaisesSciWhenEnabled) {
  pm_->press_power_button();
  EXPECT_TRUE(sci_->levels.empty());
  out(kEn, 2, 0x0100);
  EXPECT_EQ(sci_->levels, (std::vector<bool>{true}));
  out(kSts, 2, 0x0100);
  EXPECT_EQ(sci_->levels, (std::vector<bool>{true, false}));
}

TEST_F(DevAcpiPmTest, SciEnReadsAsOne) {
  EXPECT_EQ(in(kCnt, 2), 0x0001u);
  out(kCnt, 2, 0x0000);
  EXPECT_EQ(in(kCnt, 2), 0x0001u) << "ACPI mode cannot be left: there is no SMI_CMD";
  out(kCnt, 2, 0x1400);  // SLP_TYP = 5 without SLP_EN: stored, nothing happens
  EXPECT_EQ(in(kCnt, 2), 0x1401u);
  EXPECT_EQ(power_offs_, 0);
}

TEST_F(DevAcpiPmTest, SleepEnableWithS5PowersOff) {
  out(kCnt, 2, (kS5SleepType << 10) | (1u << 13) | 1u);
  EXPECT_EQ(power_offs_, 1);
  EXPECT_EQ(in(kCnt, 2) & (1u << 13), 0u) << "SLP_EN is write-only";
  out(kCnt + 1, 1, 0x20);  // byte write of the high lane: SLP_EN with SLP_TYP 0
  EXPECT_EQ(power_offs_, 2);
}

TEST_F(DevAcpiPmTest, OtherSleepTypesAreIgnored) {
  out(kCnt, 2, (5u << 10) | (1u << 13));
  out(kCnt, 2, (1u << 10) | (1u << 13));
  EXPECT_EQ(power_offs_, 0);
  out(kCnt, 1, 0x01);  // a low-lane byte write keeps the stored SLP_TYP and carries no SLP_EN
  EXPECT_EQ(power_offs_, 0);
  EXPECT_EQ(in(kCnt, 2), 0x0401u);
}

TEST_F(DevAcpiPmTest, ReservedBytesReadZero) {
  EXPECT_EQ(in(kPmIoBase + 6, 2), 0u);
  out(kPmIoBase + 6, 2, 0xFFFF);
  EXPECT_EQ(in(kPmIoBase + 6, 2), 0u);
  EXPECT_EQ(in(kCnt, 4), 0x00000001u);
}

}  // namespace
}  // namespace iovmm::devices
