// The 16550A driven as the VMM drives it: mapped on a port I/O bus and accessed through bus.read/bus.write.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "devices/uart16550.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

constexpr uint64_t kBase = Uart16550::kCom1Base;
constexpr uint64_t kThr = kBase + 0, kIer = kBase + 1, kIir = kBase + 2, kFcr = kBase + 2, kLcr = kBase + 3,
                   kMcr = kBase + 4, kLsr = kBase + 5, kMsr = kBase + 6, kScr = kBase + 7;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut2 = 0x08, kMcrLoop = 0x10;

class RecordingIrq : public io::IrqLine {
 public:
  void set_level(bool asserted) override { levels.push_back(asserted); }
  std::vector<bool> levels;
};

class DevUartTest : public ::testing::Test {
 protected:
  DevUartTest() {
    uart_ = std::make_shared<Uart16550>("uart0", irq_, [this](uint8_t byte) { sent_.push_back(byte); });
    bus_.map(io::Window{.base = kBase, .size = Uart16550::kRegionSize, .device = uart_, .region = 0, .label = "uart0"});
  }
  uint8_t in(uint64_t port) {
    uint64_t value = 0;
    EXPECT_EQ(bus_.read(port, 1, value), io::AccessResult::ok);
    return static_cast<uint8_t>(value);
  }
  void out(uint64_t port, uint8_t value) { EXPECT_EQ(bus_.write(port, 1, value), io::AccessResult::ok); }
  bool irq_level() const { return !irq_->levels.empty() && irq_->levels.back(); }

  io::Bus bus_{io::Space::pio};
  std::shared_ptr<RecordingIrq> irq_ = std::make_shared<RecordingIrq>();
  std::shared_ptr<Uart16550> uart_;
  std::vector<uint8_t> sent_;
};

TEST_F(DevUartTest, ResetState) {
  EXPECT_EQ(in(kIer), 0x00);
  EXPECT_EQ(in(kIir), 0x01);  // no interrupt, FIFOs off
  EXPECT_EQ(in(kLcr), 0x00);
  EXPECT_EQ(in(kMcr), 0x00);
  EXPECT_EQ(in(kLsr), 0x60);  // THRE | TEMT
  EXPECT_EQ(in(kMsr), 0xB0);  // DCD | DSR | CTS from the host side
}

TEST_F(DevUartTest, TransmitGoesToSink) {
  out(kThr, 'h');
  out(kThr, 'i');
  EXPECT_EQ(sent_, (std::vector<uint8_t>{'h', 'i'}));
  EXPECT_EQ(in(kLsr) & 0x60, 0x60);
}

TEST_F(DevUartTest, ScratchRegisterAndLcrHoldValues) {
  out(kScr, 0x5A);
  EXPECT_EQ(in(kScr), 0x5A);
  out(kLcr, 0x1B);
  EXPECT_EQ(in(kLcr), 0x1B);
}

TEST_F(DevUartTest, DivisorLatchShadowsThrAndIer) {
  out(kIer, 0x01);
  out(kLcr, 0x83);  // DLAB + 8N1
  out(kThr, 0x0C);  // DLL
  out(kIer, 0x00);  // DLM
  EXPECT_EQ(in(kThr), 0x0C);
  EXPECT_EQ(in(kIer), 0x00);
  EXPECT_TRUE(sent_.empty()) << "a DLL write must not transmit";
  out(kLcr, 0x03);
  EXPECT_EQ(in(kIer), 0x01) << "IER kept its value while DLAB was set";
  out(kLcr, 0x83);
  EXPECT_EQ(in(kThr), 0x0C);
  out(kLcr, 0x03);
}

TEST_F(DevUartTest, LoopbackTurnsTransmitIntoReceiveAndMirrorsModemLines) {
  out(kMcr, kMcrLoop | kMcrRts | kMcrOut2);
  out(kThr, 0x42);
  EXPECT_TRUE(sent_.empty()) << "loopback keeps bytes off the line";
  EXPECT_EQ(in(kLsr) & 0x01, 0x01);
  EXPECT_EQ(in(kThr), 0x42);
  EXPECT_EQ(in(kLsr) & 0x01, 0x00);
  // RTS -> CTS, OUT2 -> DCD; DTR and OUT1 off -> DSR and RI off. DSR dropped from the host's "on": delta DSR.
  uint8_t msr = in(kMsr);
  EXPECT_EQ(msr & 0xF0, 0x90);
  EXPECT_EQ(msr & 0x0F, 0x02);
  EXPECT_EQ(in(kMsr) & 0x0F, 0x00) << "delta bits clear on read";
  out(kMcr, kMcrLoop | kMcrRts | kMcrOut2 | kMcrDtr);
  EXPECT_EQ(in(kMsr), 0xB2);  // DSR back on, delta DSR
  // Host input is disconnected in loopback: accepted and dropped.
  const uint8_t input[] = {1, 2, 3};
  EXPECT_EQ(uart_->receive(input), 3u);
  EXPECT_EQ(in(kLsr) & 0x01, 0x00);
  out(kMcr, 0);
  EXPECT_EQ(in(kMsr) & 0xF0, 0xB0);
}

TEST_F(DevUartTest, FifoOverrunKeepsFifoAndFlagsOe) {
  out(kFcr, 0x07);  // enable + reset both FIFOs
  out(kMcr, kMcrLoop);
  for (int i = 0; i < 17; ++i) out(kThr, static_cast<uint8_t>(0x30 + i));
  EXPECT_EQ(in(kLsr), 0x63);  // DR | OE | THRE | TEMT
  EXPECT_EQ(in(kLsr), 0x61) << "OE clears when LSR is read";
  for (int i = 0; i < 16; ++i) EXPECT_EQ(in(kThr), 0x30 + i);
  EXPECT_EQ(in(kLsr), 0x60);
}

TEST_F(DevUartTest, OverrunWithoutFifoReplacesTheUnreadByte) {
  out(kMcr, kMcrLoop);
  out(kThr, 'a');
  out(kThr, 'b');
  EXPECT_EQ(in(kLsr), 0x63);
  EXPECT_EQ(in(kThr), 'b');
  EXPECT_EQ(in(kLsr), 0x60);
}

TEST_F(DevUartTest, ReceiveAcceptsOnlyWhatFits) {
  std::vector<uint8_t> input(20);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(uart_->receive(input), 1u) << "without FIFOs the receiver holds one byte";
  EXPECT_FALSE(uart_->rx_has_room());
  EXPECT_EQ(in(kThr), 0);
  EXPECT_TRUE(uart_->rx_has_room());

  out(kFcr, 0x01);
  EXPECT_EQ(uart_->receive(input), 16u);
  EXPECT_FALSE(uart_->rx_has_room());
  EXPECT_EQ(in(kLsr) & 0x02, 0x00) << "refused input is not an overrun";
  EXPECT_EQ(in(kThr), 0);
  EXPECT_TRUE(uart_->rx_has_room());
  EXPECT_EQ(uart_->receive(std::span(input).subspan(16)), 1u);
  for (int i = 1; i < 16; ++i) EXPECT_EQ(in(kThr), i);
  EXPECT_EQ(in(kThr), 16);
}

TEST_F(DevUartTest, FifoResetEmptiesReceiver) {
  out(kFcr, 0x01);
  const uint8_t input[] = {1, 2, 3};
  ASSERT_EQ(uart_->receive(input), 3u);
  out(kFcr, 0x03);  // enable + RX reset
  EXPECT_EQ(in(kLsr) & 0x01, 0x00);
  ASSERT_EQ(uart_->receive(input), 3u);
  out(kFcr, 0x00);  // turning the FIFOs off empties them too
  EXPECT_EQ(in(kLsr) & 0x01, 0x00);
  EXPECT_EQ(in(kIir) & 0xC0, 0x00);
}

TEST_F(DevUartTest, IirReportsInterruptsInPriorityOrder) {
  out(kFcr, 0x01);  // FIFOs on, trigger level 1
  out(kMcr, kMcrOut2);
  EXPECT_EQ(in(kIir), 0xC1);
  out(kIer, 0x0F);
  EXPECT_EQ(in(kIir), 0xC2) << "enabling ETBEI with THR empty raises THRE";
  EXPECT_EQ(in(kIir), 0xC1) << "reading IIR acknowledged THRE";

  out(kMcr, kMcrOut2 | kMcrLoop);  // modem inputs change: CTS/DSR drop -> deltas
  EXPECT_EQ(in(kIir), 0xC0);        // modem status (lowest priority)
  out(kThr, 0x55);                  // loops back: RX data outranks modem status and THRE
  EXPECT_EQ(in(kIir), 0xC4);
  for (int i = 0; i < 16; ++i) out(kThr, 0x55);  // 17 in a 16-byte FIFO: overrun
  EXPECT_EQ(in(kIir), 0xC6) << "line status is the highest priority";
  EXPECT_EQ(in(kLsr) & 0x02, 0x02);
  EXPECT_EQ(in(kIir), 0xC4);
  for (int i = 0; i < 16; ++i) (void)in(kThr);
  EXPECT_EQ(in(kIir), 0xC2) << "THR writes left THRE pending";
  EXPECT_EQ(in(kIir), 0xC0);
  (void)in(kMsr);
  EXPECT_EQ(in(kIir), 0xC1);
}

TEST_F(DevUartTest, CharacterTimeoutBelowTriggerLevel) {
  out(kFcr, 0xC1);  // trigger level 14
  out(kIer, 0x01);
  std::vector<uint8_t> input(3, 'x');
  ASSERT_EQ(uart_->receive(input), 3u);
  EXPECT_EQ(in(kIir), 0xCC);
  input.assign(11, 'y');
  ASSERT_EQ(uart_->receive(input), 11u);
  EXPECT_EQ(in(kIir), 0xC4);
}

TEST_F(DevUartTest, IrqLevelFollowsPendingInterruptsGatedByOut2) {
  out(kIer, 0x02);  // THRE pending, but OUT2 is off: the line stays low
  EXPECT_TRUE(irq_->levels.empty());
  EXPECT_EQ(in(kIir), 0x02);
  out(kIer, 0x00);
  out(kMcr, kMcrOut2);
  EXPECT_TRUE(irq_->levels.empty());
  out(kIer, 0x02);
  EXPECT_EQ(irq_->levels, (std::vector<bool>{true}));
  EXPECT_EQ(in(kIir), 0x02);
  EXPECT_EQ(irq_->levels, (std::vector<bool>{true, false}));
  // THRE was acknowledged; a THR write empties THR again at once (instant transmission), raising the line.
  out(kThr, 'a');
  EXPECT_EQ(irq_->levels, (std::vector<bool>{true, false, true}));
  // With THRE pending, another write drops the line and raises it again: a fresh edge for the PIC.
  out(kThr, 'b');
  EXPECT_EQ(irq_->levels, (std::vector<bool>{true, false, true, false, true}));
  out(kMcr, 0);
  EXPECT_FALSE(irq_level());
  out(kMcr, kMcrOut2);
  EXPECT_TRUE(irq_level());

  // Received data raises the line from the event loop thread's receive().
  (void)in(kIir);
  EXPECT_FALSE(irq_level());
  out(kIer, 0x01);
  const uint8_t byte = 'z';
  ASSERT_EQ(uart_->receive(std::span(&byte, 1)), 1u);
  EXPECT_TRUE(irq_level());
  EXPECT_EQ(in(kThr), 'z');
  EXPECT_FALSE(irq_level());
}

TEST_F(DevUartTest, WideAccessesReachConsecutiveRegisters) {
  out(kScr, 0x77);
  uint64_t value = 0;
  ASSERT_EQ(bus_.read(kMsr, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x77B0u);
  ASSERT_EQ(bus_.write(kLcr, 2, 0x0383), io::AccessResult::ok);  // LCR = 0x83, MCR = 0x03
  EXPECT_EQ(in(kLcr), 0x83);
  EXPECT_EQ(in(kMcr), 0x03);
}

TEST_F(DevUartTest, GuestWritesToStatusRegistersAreIgnored) {
  out(kLsr, 0x00);
  out(kMsr, 0x00);
  EXPECT_EQ(in(kLsr), 0x60);
  EXPECT_EQ(in(kMsr), 0xB0);
}

}  // namespace
}  // namespace iovmm::devices
