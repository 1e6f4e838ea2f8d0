#include "devices/ide/ide_channel.h"

#include <linux/hdreg.h>

#include "common/log.h"

namespace iovmm::devices::ide {

using namespace ata;

IdeChannel::IdeChannel(std::string label, std::unique_ptr<AtaDisk> device0, std::shared_ptr<io::IrqLine> irq,
                       GuestMemory* memory)
    : label_(std::move(label)), irq_(std::move(irq)), memory_(memory) {
  devices_[0] = std::move(device0);
  // Power-on: the devices have run their diagnostics and left the signature.
  if (!empty()) {
    tf_.set_signature();
    tf_.error = kDiagnosticPassed;
  }
}

uint32_t IdeChannel::read_data(unsigned size) {
  AtaDisk* device = selected();
  if (!device) return 0;
  Interrupt interrupt = Interrupt::no;
  uint32_t value = device->read_data(size, tf_, interrupt);
  raise(interrupt);
  return value;
}

void IdeChannel::write_data(unsigned size, uint32_t value) {
  AtaDisk* device = selected();
  if (!device) return;
  Interrupt interrupt = Interrupt::no;
  device->write_data(value, size, tf_, interrupt);
  raise(interrupt);
}

uint8_t IdeChannel::read_register(const io::Register& row) {
  if (empty()) return 0;
  const bool hob = control_ & kControlHob;
  switch (static_cast<CommandRegister>(row.id)) {
    case CommandRegister::data:
      return 0xFF;  // a byte read of the 16-bit data port
    case CommandRegister::error_features:
      return hob ? tf_.hob_features : tf_.error;
    case CommandRegister::sector_count:
      return hob ? tf_.hob_count : tf_.count;
    case CommandRegister::lba_low:
      return hob ? tf_.hob_lba_low : tf_.lba_low;
    case CommandRegister::lba_mid:
      return hob ? tf_.hob_lba_mid : tf_.lba_mid;
    case CommandRegister::lba_high:
      return hob ? tf_.hob_lba_high : tf_.lba_high;
    case CommandRegister::device:
      return tf_.device;
    case CommandRegister::status_command: {
      AtaDisk* device = selected();
      clear_interrupt();
      return device ? device->status() : 0;
    }
  }
  return 0xFF;
}

bool IdeChannel::selected_busy() const {
  AtaDisk* device = selected();
  return device && (device->status() & (kStatusBsy | kStatusDrq));
}

void IdeChannel::write_register(const io::Register& row, uint8_t value) {
  const auto reg = static_cast<CommandRegister>(row.id);
  if (empty() || reg == CommandRegister::data) return;  // nobody latches; a byte write to the data port is dropped
  if (selected_busy()) {
    IOVMM_LOG_RATELIMITED("{}: write of {:#04x} to {} while the device is busy: ignored", label_, value, row.name);
    return;
  }
  control_ &= static_cast<uint8_t>(~kControlHob);
  auto latch = [value](uint8_t& current, uint8_t& previous) {
    previous = current;
    current = value;
  };
  switch (reg) {
    case CommandRegister::error_features:
      latch(tf_.features, tf_.hob_features);
      break;
    case CommandRegister::sector_count:
      latch(tf_.count, tf_.hob_count);
      break;
    case CommandRegister::lba_low:
      latch(tf_.lba_low, tf_.hob_lba_low);
      break;
    case CommandRegister::lba_mid:
      latch(tf_.lba_mid, tf_.hob_lba_mid);
      break;
    case CommandRegister::lba_high:
      latch(tf_.lba_high, tf_.hob_lba_high);
      break;
    case CommandRegister::device:
      tf_.device = value | kDeviceObsolete;
      break;
    case CommandRegister::status_command:
      execute(value);
      break;
    case CommandRegister::data:
      break;
  }
}

void IdeChannel::execute(uint8_t command) {
  AtaDisk* device = selected();
  // Both devices run EXECUTE DEVICE DIAGNOSTIC whatever DEV says; any other command for an absent device 1 is
  // ignored by device 0.
  if (!device && command == WIN_DIAGNOSE) device = devices_[0].get();
  if (!device) return;
  clear_interrupt();
  raise(device->execute(command, tf_));
  run_dma_if_ready();
}

uint8_t IdeChannel::read_alternate_status() const {
  AtaDisk* device = selected();
  return device ? device->status() : 0;
}

void IdeChannel::write_device_control(uint8_t value) {
  const bool was_reset = control_ & kControlSrst;
  control_ = value & (kControlHob | kControlSrst | kControlNien);
  const bool reset = control_ & kControlSrst;
  if (reset && !was_reset) {
    for (auto& device : devices_) {
      if (device) device->begin_reset();
    }
    irq_pending_ = false;
  } else if (was_reset && !reset) {
    for (auto& device : devices_) {
      if (device) device->complete_reset(tf_);
    }
  }
  update_irq();
}

void IdeChannel::write_bus_master(BusMasterRegister reg, unsigned byte, uint8_t value) {
  if (bus_master_.write(reg, byte, value)) run_dma_if_ready();
}

void IdeChannel::raise(Interrupt interrupt) {
  if (interrupt == Interrupt::no) return;
  irq_pending_ = true;
  if (!(control_ & kControlNien)) bus_master_.set_interrupt();
  update_irq();
}

void IdeChannel::clear_interrupt() {
  if (!irq_pending_) return;
  irq_pending_ = false;
  update_irq();
}

void IdeChannel::update_irq() {
  bool level = irq_pending_ && !(control_ & kControlNien);
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_->set_level(level);
}

void IdeChannel::run_dma_if_ready() {
  AtaDisk* device = selected();
  if (!device || !device->dma_pending() || !bus_master_.active() || !memory_) return;
  if (bus_master_.writes_memory() != device->dma_to_memory()) {
    IOVMM_LOG_RATELIMITED("{}: bus master direction ({}) does not match the DMA command; the command decides",
                          label_, bus_master_.writes_memory() ? "to memory" : "from memory");
  }
  auto walk = bus_master_.walk(*memory_, device->dma_bytes());
  switch (walk.result) {
    case BusMaster::WalkResult::complete: {
      Interrupt interrupt = device->run_dma(*memory_, walk.pieces, tf_);
      if (device->status() & kStatusErr) bus_master_.stop();
      raise(interrupt);
      break;
    }
    case BusMaster::WalkResult::short_table:
      IOVMM_LOG_RATELIMITED("{}: PRD table at {:#x} ends before the {}-byte transfer does", label_,
                            bus_master_.prd_address(), device->dma_bytes());
      device->cancel_dma();
      break;
    case BusMaster::WalkResult::bad_address:
      IOVMM_LOG_RATELIMITED("{}: PRD table at {:#x} reaches outside guest RAM: bus master error", label_,
                            bus_master_.prd_address());
      raise(device->abort_dma(tf_));
      break;
  }
}

}  // namespace iovmm::devices::ide
