// 16550A UART as a PC sees it at COM1 (0x3F8, IRQ 4), register-compatible with QEMU's "serial" device.
//
// Models: all eight registers with the divisor latch (LCR.DLAB), IER, IIR with FIFO-enabled bits and the 16550
// interrupt priorities (line status > received data / character timeout > THR empty > modem status), FCR (FIFO
// enable, RX/TX FIFO reset, RX trigger level), LCR, MCR (loopback wires TX to RX and the modem outputs to the modem
// inputs; OUT2 gates the interrupt as on PC boards), LSR (DR, OE, THRE, TEMT), MSR with delta bits, SCR, and a
// 16-byte RX FIFO.
// Leaves out: line timing (the divisor is stored, never used; transmission completes at once, so THRE/TEMT are
// always set), parity/framing/break errors, the TX FIFO as a buffer (bytes go straight to the sink), DMA modes,
// and the chip's disconnection of OUT2 from its pin in loopback (OUT2 gates the IRQ in loopback too, so
// interrupt-driven loopback tests work; QEMU does not gate on OUT2 at all). Because there is no line timing, the
// "character timeout" interrupt is reported as soon as data sits below the trigger level: a burst handed to
// receive() is complete by the time the guest looks.
// Spec: TI/National "PC16550D UART with FIFOs" datasheet (SNLS378).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "io/device.h"
#include "io/register_map.h"

namespace iovmm::devices {

class Uart16550 final : public io::Device {
 public:
  static constexpr uint16_t kCom1Base = 0x3F8;
  static constexpr unsigned kCom1Irq = 4;
  static constexpr uint64_t kRegionSize = 8;
  static constexpr size_t kFifoSize = 16;

  using OutputSink = std::function<void(uint8_t)>;

  // `irq` may be null (a UART polled by the guest). `output` receives every byte the guest transmits outside
  // loopback; it is called with the device mutex held, so it must not call back into this device.
  Uart16550(std::string name, std::shared_ptr<io::IrqLine> irq, OutputSink output);

  // Host side (event loop thread): feeds bytes arriving on the line. Takes the device mutex. Returns how many bytes
  // were accepted; the caller keeps the rest for later. In loopback mode the line is disconnected, as on the chip,
  // and input is accepted and dropped.
  size_t receive(std::span<const uint8_t> bytes);
  // True when receive() would accept at least one byte: the event loop stops reading its input while this is false.
  [[nodiscard]] bool rx_has_room();

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  [[nodiscard]] uint8_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint8_t value);
  void write_fcr(uint8_t value);
  void write_mcr(uint8_t value);
  void transmit(uint8_t byte);
  // Puts one byte into the receiver (from the line or from loopback), flagging overrun when there is no room.
  void push_rx(uint8_t byte);
  [[nodiscard]] uint8_t pop_rx();
  [[nodiscard]] size_t rx_capacity() const;
  [[nodiscard]] size_t rx_trigger_level() const;
  // The modem input lines (CTS, DSR, RI, DCD in MSR bits 4..7) as the current mode defines them.
  [[nodiscard]] uint8_t modem_inputs() const;
  void refresh_modem_inputs();
  // Highest-priority pending interrupt as an IIR identification value (bits 3..0), 0x01 when none.
  [[nodiscard]] uint8_t pending_interrupt() const;
  void update_irq();

  std::shared_ptr<io::IrqLine> irq_;
  OutputSink output_;
  io::RegisterMap map_;  // of the register table

  std::array<uint8_t, kFifoSize> rx_fifo_{};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;

  uint16_t divisor_ = 0;
  uint8_t ier_ = 0;
  uint8_t fcr_ = 0;  // only the bits we keep: FIFO enable and trigger level
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t lsr_errors_ = 0;  // OE (and, if ever modelled, PE/FE/BI): cleared by reading LSR
  uint8_t msr_ = 0;         // lines in bits 4..7, delta bits in 0..3
  uint8_t scr_ = 0;
  bool thr_empty_interrupt_ = false;  // THRE interrupt latch: set when THR empties, cleared by IIR read or THR write
  bool irq_level_ = false;
};

}  // namespace iovmm::devices
