#include "devices/factory.h"

#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <charconv>

#include "block/backend.h"
#include "common/error.h"
#include "devices/ide/ide_controller.h"
#include "devices/pci_testdev.h"
#include "devices/vga_window.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/pci.h"

namespace iovmm::devices {
namespace {

// virtio-blk's own limit (blk.cpp), checked here too so that the refusal names the --device.
constexpr unsigned kMaxVirtioBlkQueues = 64;

bool take_on_off(const DeviceSpec& spec, std::string_view key, bool fallback) {
  auto value = spec.take(key);
  if (!value) return fallback;
  if (*value == "on" || *value == "true" || *value == "1") return true;
  if (*value == "off" || *value == "false" || *value == "0") return false;
  throw UsageError(fmt::format("--device {}: {}={}: expected on or off", spec.text(), key, *value));
}

// A number in [min, max]; out of range or not a number is one line that names the option, the value and the range.
unsigned take_number(const DeviceSpec& spec, std::string_view key, unsigned fallback, unsigned min, unsigned max) {
  auto value = spec.take(key);
  if (!value) return fallback;
  uint64_t number = 0;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), number);
  const bool digits = end == value->data() + value->size() && end != value->data();
  if (!digits || (error != std::errc() && error != std::errc::result_out_of_range)) {
    throw UsageError(fmt::format("--device {}: {}={}: expected a number from {} to {}", spec.text(), key, *value,
                                 min, max));
  }
  if (error == std::errc::result_out_of_range || number < min || number > max) {
    throw UsageError(fmt::format("--device {}: {}={}: out of range ({} to {})", spec.text(), key, *value, min, max));
  }
  return static_cast<unsigned>(number);
}

// id=: the device's name in statistics and messages. QEMU's rule for ids (a letter, then letters, digits, '-', '.'
// and '_'), so that a name is one word in --stats and a JSON key nobody has to quote.
std::string take_id(const DeviceSpec& spec) {
  auto id = spec.take("id");
  if (!id) return default_device_name(spec.type());
  if (id->empty()) throw UsageError(fmt::format("--device {}: id= is empty", spec.text()));
  if (!valid_device_id(*id)) {
    throw UsageError(fmt::format("--device {}: id={}: must start with a letter and hold only letters, digits, '-', "
                                 "'.' and '_'", spec.text(), *id));
  }
  return *id;
}

// file=, readonly=, direct=, locking=: the disk image options virtio-blk and ide share, as QEMU's -drive has them.
std::unique_ptr<block::Backend> open_disk(const DeviceSpec& spec, const std::string& name) {
  block::BackendOptions options;
  auto file = spec.take("file");
  if (!file || file->empty()) throw UsageError(fmt::format("--device {}: file=IMAGE is required", spec.text()));
  options.path = *file;
  options.readonly = take_on_off(spec, "readonly", false);
  options.direct = take_on_off(spec, "direct", false);
  options.locking = take_on_off(spec, "locking", true);
  options.owner = name;
  try {
    return block::Backend::open(options);
  } catch (const Error& e) {
    throw UsageError(fmt::format("--device {}: {}", spec.text(), e.what()));
  }
}

void require_machine(const DeviceSpec& spec, const DeviceContext& context) {
  if (!context.memory || !context.watcher || !context.isa_irq) {
    throw UsageError(fmt::format("--device {}: this device needs the VMM's guest memory, interrupts and event loop; "
                                 "it cannot run in an iovmm-device process (use server=thread)",
                                 spec.text()));
  }
}

BuiltDevice make_virtio_blk(const DeviceSpec& spec, const DeviceContext& context) {
  require_machine(spec, context);
  std::string name = take_id(spec);
  std::string transport = spec.take("transport").value_or("pci");
  bool legacy = take_on_off(spec, "legacy", false);
  virtio::VirtioBlkOptions options;
  options.queues = take_number(spec, "queues", options.queues, 1, kMaxVirtioBlkQueues);
  const unsigned queue_size =
      take_number(spec, "queue_size", options.queue_size, 2, virtio::VirtioTransport::kMaxQueueSize);
  if (!std::has_single_bit(queue_size)) {
    throw UsageError(fmt::format("--device {}: queue_size={}: not a power of two (2, 4, ... {})", spec.text(),
                                 queue_size, virtio::VirtioTransport::kMaxQueueSize));
  }
  options.queue_size = static_cast<uint16_t>(queue_size);  // at most 32768: fits
  if (auto serial = spec.take("serial")) options.serial = *serial;
  auto blk = std::make_unique<virtio::VirtioBlk>(open_disk(spec, name), options);
  spec.reject_unused("id, file, transport, legacy, readonly, direct, locking, queues, queue_size, serial, dispatch, "
                     "dispatch.REGISTER");

  BuiltDevice built;
  if (transport == "mmio") {
    auto device = std::make_shared<virtio::VirtioMmio>(name, std::move(blk), context, virtio::VirtioMmioOptions{legacy});
    built.connect_virtio_mmio_irq = [device](std::shared_ptr<io::IrqLine> line) { device->connect_irq(std::move(line)); };
    built.device = device;
  } else if (transport == "pci") {
    built.device = std::make_shared<virtio::VirtioPci>(name, std::move(blk), context, virtio::VirtioPciOptions{legacy});
  } else {
    throw UsageError(fmt::format("--device {}: transport={}: expected mmio or pci", spec.text(), transport));
  }
  return built;
}

BuiltDevice make_ide(const DeviceSpec& spec, const DeviceContext& context) {
  require_machine(spec, context);
  std::string name = take_id(spec);
  auto disk = open_disk(spec, name);
  spec.reject_unused("id, file, readonly, direct, locking, dispatch, dispatch.REGISTER");
  BuiltDevice built;
  built.device = std::make_shared<IdeController>(name, std::move(disk), context);
  built.fixed_windows = IdeController::legacy_windows();
  // Where QEMU's -M pc has the PIIX3: the ISA bridge at 00:01.0, IDE at 00:01.1.
  built.pci_address = PciAddress{1, 1};
  built.companions.emplace_back(PciAddress{1, 0}, make_piix3_isa_bridge());
  return built;
}

}  // namespace

bool valid_device_id(std::string_view id) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (id.empty() || !letter(id.front())) return false;
  return std::all_of(id.begin(), id.end(), [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  });
}

std::string default_device_name(std::string_view type) {
  if (type == "vga-window") return "vga";
  return std::string(type);
}

bool needs_machine(std::string_view type) { return type == "virtio-blk" || type == "ide"; }

std::string known_device_types() { return "pci-testdev, vga-window, virtio-blk, ide"; }

BuiltDevice make_device(const DeviceSpec& spec, const DeviceContext& context) {
  BuiltDevice built;
  if (spec.type() == "pci-testdev") {
    PciTestdevOptions options;
    // As QEMU 7.2 does when KVM allows it, so that the same guest measures the same ioeventfd.
    options.any_length_mmio_wildcard = context.host.ioeventfd_any_length;
    auto testdev = std::make_shared<PciTestdev>(take_id(spec), options);
    if (context.doorbells) testdev->set_doorbell_host(context.doorbells);
    built.device = testdev;
    spec.reject_unused("id, dispatch, dispatch.REGISTER");
  } else if (spec.type() == "vga-window") {
    built.device = std::make_shared<VgaWindow>(take_id(spec));
    built.fixed_windows.push_back({0, io::Space::mmio, VgaWindow::kBase, VgaWindow::kSize});
    spec.reject_unused("id, dispatch, dispatch.REGISTER");
  } else if (spec.type() == "virtio-blk") {
    built = make_virtio_blk(spec, context);
  } else if (spec.type() == "ide") {
    built = make_ide(spec, context);
  } else {
    throw UsageError(fmt::format("--device {}: unknown device type '{}' (known: {})", spec.text(), spec.type(),
                                 known_device_types()));
  }
  return built;
}

}  // namespace iovmm::devices
