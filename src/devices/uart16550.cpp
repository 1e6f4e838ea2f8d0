#include "devices/uart16550.h"

#include <algorithm>
#include <string_view>

#include "common/log.h"

namespace iovmm::devices {
namespace {

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
constexpr uint8_t kIerImplemented = 0x0F;  // the upper nibble reads as zero on a 16550A

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirCharTimeout = 0x0C;
constexpr uint8_t kIirFifosEnabled = 0xC0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrRxReset = 0x02;
constexpr uint8_t kFcrTriggerMask = 0xC0;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrImplemented = 0x1F;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrDeltas = 0x0F;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kMsrLines = 0xF0;

// The rows' ids (io::Register::id), which read_register and write_register switch on.
enum class Reg : uint16_t { rbr_thr_dll, ier_dlm, iir_fcr, lcr, mcr, lsr, msr, scr };

constexpr io::Register reg(std::string_view name, Reg id, uint64_t offset, io::Access access, io::Effect effect,
                           uint64_t reset = 0) {
  return io::Register{.name = name, .offset = offset, .width = 1, .access = access, .effect = effect,
                      .reset_value = reset, .id = static_cast<uint16_t>(id)};
}

// The 16550's eight registers (the DLAB selects the divisor latch at 0 and 1). Reading RBR, IIR, LSR or MSR
// changes state, and most writes act at once; LCR and SCR only store a value that later accesses use.
constexpr io::Register kUartRegisters[] = {
    reg("rbr_thr_dll", Reg::rbr_thr_dll, 0, io::Access::rw, io::Effect::synchronous),
    reg("ier_dlm", Reg::ier_dlm, 1, io::Access::rw, io::Effect::synchronous),
    reg("iir_fcr", Reg::iir_fcr, 2, io::Access::rw, io::Effect::read_sensitive, kIirNone),
    reg("lcr", Reg::lcr, 3, io::Access::rw, io::Effect::latch),
    reg("mcr", Reg::mcr, 4, io::Access::rw, io::Effect::synchronous),
    reg("lsr", Reg::lsr, 5, io::Access::ro, io::Effect::read_sensitive, kLsrThrEmpty | kLsrTransmitterEmpty),
    reg("msr", Reg::msr, 6, io::Access::ro, io::Effect::read_sensitive),
    reg("scr", Reg::scr, 7, io::Access::rw, io::Effect::latch),
};
constexpr io::RegisterBlock kUartBlocks[] = {{0, "uart", kUartRegisters}};

}  // namespace

Uart16550::Uart16550(std::string name, std::shared_ptr<io::IrqLine> irq, OutputSink output)
    : io::Device(std::move(name)), irq_(std::move(irq)), output_(std::move(output)), map_(kUartRegisters) {
  msr_ = modem_inputs();
}

size_t Uart16550::receive(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex());
  if (mcr_ & kMcrLoop) return bytes.size();  // the chip disconnects its serial input in loopback
  size_t accepted = std::min(bytes.size(), rx_capacity() - rx_count_);
  for (size_t i = 0; i < accepted; ++i) push_rx(bytes[i]);
  update_irq();
  return accepted;
}

bool Uart16550::rx_has_room() {
  std::lock_guard lock(mutex());
  return (mcr_ & kMcrLoop) || rx_count_ < rx_capacity();
}

uint64_t Uart16550::read(unsigned region, uint64_t offset, unsigned size) {
  if (region != 0) return ~0ull;
  // The UART sits on an 8-bit bus: a wider access reaches consecutive registers, one byte each.
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint64_t{read_register(offset + i)} << (8 * i);
  return value;
}

void Uart16550::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0) return;
  for (unsigned i = 0; i < size; ++i) {
    write_register(offset + i, static_cast<uint8_t>(value >> (8 * i)));
  }
}

uint8_t Uart16550::read_register(uint64_t offset) {
  const io::Register* row = map_.find(offset, 1);
  if (!row) return 0xFF;
  switch (static_cast<Reg>(row->id)) {
    case Reg::rbr_thr_dll:
      if (lcr_ & kLcrDlab) return static_cast<uint8_t>(divisor_);
      return pop_rx();
    case Reg::ier_dlm:
      if (lcr_ & kLcrDlab) return static_cast<uint8_t>(divisor_ >> 8);
      return ier_;
    case Reg::iir_fcr: {
      uint8_t id = pending_interrupt();
      // Reading IIR while it reports THR empty is one of the two ways to acknowledge that interrupt.
      if (id == kIirThrEmpty) {
        thr_empty_interrupt_ = false;
        update_irq();
      }
      return static_cast<uint8_t>(id | ((fcr_ & kFcrEnable) ? kIirFifosEnabled : 0));
    }
    case Reg::lcr:
      return lcr_;
    case Reg::mcr:
      return mcr_;
    case Reg::lsr: {
      uint8_t lsr = kLsrThrEmpty | kLsrTransmitterEmpty | lsr_errors_;
      if (rx_count_ > 0) lsr |= kLsrDataReady;
      lsr_errors_ = 0;  // error bits clear on read
      update_irq();
      return lsr;
    }
    case Reg::msr: {
      uint8_t msr = msr_;
      msr_ &= kMsrLines;  // delta bits clear on read
      update_irq();
      return msr;
    }
    case Reg::scr:
      return scr_;
    default:
      return 0xFF;
  }
}

void Uart16550::write_register(uint64_t offset, uint8_t value) {
  const io::Register* row = map_.find(offset, 1);
  if (!row) return;
  switch (static_cast<Reg>(row->id)) {
    case Reg::rbr_thr_dll:
      if (lcr_ & kLcrDlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0xFF00) | value);
        return;
      }
      // Writing THR acknowledges the THR-empty interrupt; the line drops before the (instant) transmission makes
      // THR empty again, so an edge-triggered PIC sees a fresh edge for the next byte, as with QEMU.
      thr_empty_interrupt_ = false;
      update_irq();
      transmit(value);
      thr_empty_interrupt_ = true;
      update_irq();
      return;
    case Reg::ier_dlm:
      if (lcr_ & kLcrDlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0x00FF) | (value << 8));
        return;
      }
      {
        uint8_t enabling = static_cast<uint8_t>(value & ~ier_);
        ier_ = value & kIerImplemented;
        // Enabling ETBEI while THR is empty raises the interrupt at once; drivers rely on this to start output.
        if (enabling & kIerThrEmpty) thr_empty_interrupt_ = true;
      }
      update_irq();
      return;
    case Reg::iir_fcr:
      write_fcr(value);
      return;
    case Reg::lcr:
      lcr_ = value;
      return;
    case Reg::mcr:
      write_mcr(value);
      return;
    case Reg::lsr:
    case Reg::msr:
      // Status registers: writes reach only the factory test logic on the chip. Ignored, as QEMU does.
      IOVMM_LOG_RATELIMITED("{}: guest wrote {:#04x} to read-only register {}: ignored", name(), value, row->name);
      return;
    case Reg::scr:
      scr_ = value;
      return;
    default:
      return;
  }
}

void Uart16550::write_fcr(uint8_t value) {
  bool was_enabled = fcr_ & kFcrEnable;
  bool enable = value & kFcrEnable;
  // Switching the FIFOs on or off empties them; the reset bits do so explicitly. The TX FIFO never holds data here.
  if (was_enabled != enable || (enable && (value & kFcrRxReset))) {
    rx_head_ = 0;
    rx_count_ = 0;
  }
  fcr_ = enable ? static_cast<uint8_t>(value & (kFcrEnable | kFcrTriggerMask)) : 0;
  update_irq();
}

void Uart16550::write_mcr(uint8_t value) {
  mcr_ = value & kMcrImplemented;
  refresh_modem_inputs();
  update_irq();
}

void Uart16550::transmit(uint8_t byte) {
  if (mcr_ & kMcrLoop) {
    push_rx(byte);
  } else if (output_) {
    output_(byte);
  }
}

size_t Uart16550::rx_capacity() const { return (fcr_ & kFcrEnable) ? kFifoSize : 1; }

size_t Uart16550::rx_trigger_level() const {
  static constexpr size_t kLevels[4] = {1, 4, 8, 14};
  return kLevels[(fcr_ & kFcrTriggerMask) >> 6];
}

void Uart16550::push_rx(uint8_t byte) {
  if (rx_count_ >= rx_capacity()) {
    lsr_errors_ |= kLsrOverrun;
    // In 16450 mode the new character replaces the unread one; with FIFOs the FIFO keeps its contents and the
    // character in the shift register is lost.
    if (!(fcr_ & kFcrEnable)) rx_fifo_[rx_head_] = byte;
    return;
  }
  rx_fifo_[(rx_head_ + rx_count_) % kFifoSize] = byte;
  ++rx_count_;
}

uint8_t Uart16550::pop_rx() {
  if (rx_count_ == 0) return 0;
  uint8_t byte = rx_fifo_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kFifoSize;
  --rx_count_;
  update_irq();
  return byte;
}

uint8_t Uart16550::modem_inputs() const {
  if (mcr_ & kMcrLoop) {
    // Loopback wires the modem outputs back to the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
    uint8_t lines = 0;
    if (mcr_ & kMcrRts) lines |= kMsrCts;
    if (mcr_ & kMcrDtr) lines |= kMsrDsr;
    if (mcr_ & kMcrOut1) lines |= kMsrRi;
    if (mcr_ & kMcrOut2) lines |= kMsrDcd;
    return lines;
  }
  // The host side is always "connected and ready", as QEMU presents a character backend without modem control.
  return kMsrDcd | kMsrDsr | kMsrCts;
}

void Uart16550::refresh_modem_inputs() {
  uint8_t old_lines = msr_ & kMsrLines;
  uint8_t new_lines = modem_inputs();
  uint8_t changed = old_lines ^ new_lines;
  uint8_t deltas = msr_ & kMsrDeltas;
  if (changed & kMsrCts) deltas |= kMsrDeltaCts;
  if (changed & kMsrDsr) deltas |= kMsrDeltaDsr;
  if ((old_lines & kMsrRi) && !(new_lines & kMsrRi)) deltas |= kMsrTrailingRi;  // trailing edge only
  if (changed & kMsrDcd) deltas |= kMsrDeltaDcd;
  msr_ = static_cast<uint8_t>(new_lines | deltas);
}

uint8_t Uart16550::pending_interrupt() const {
  if ((ier_ & kIerLineStatus) && lsr_errors_) return kIirLineStatus;
  if ((ier_ & kIerRxData) && rx_count_ > 0) {
    if (!(fcr_ & kFcrEnable) || rx_count_ >= rx_trigger_level()) return kIirRxData;
    return kIirCharTimeout;
  }
  if ((ier_ & kIerThrEmpty) && thr_empty_interrupt_) return kIirThrEmpty;
  if ((ier_ & kIerModemStatus) && (msr_ & kMsrDeltas)) return kIirModemStatus;
  return kIirNone;
}

void Uart16550::update_irq() {
  // On PC boards OUT2 enables the buffer between the UART's INTR pin and the ISA IRQ line.
  bool level = pending_interrupt() != kIirNone && (mcr_ & kMcrOut2);
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_->set_level(level);
}

std::span<const io::RegisterBlock> Uart16550::register_blocks() const { return kUartBlocks; }

}  // namespace iovmm::devices
