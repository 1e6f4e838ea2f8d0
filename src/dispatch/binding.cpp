#include "dispatch/binding.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::dispatch {
namespace {

bool readable(const io::Register& reg) { return reg.access != io::Access::wo; }
bool writable(const io::Register& reg) { return reg.access != io::Access::ro; }

std::string describe(std::string_view device, const io::RegisterBlock& block, const io::Register& reg) {
  return fmt::format("{}: register {}+{:#x} ({})", device, block.name, reg.offset, reg.name);
}

}  // namespace

const WindowBinding::BoundRegister* WindowBinding::find(uint64_t offset, unsigned size) const {
  for (const auto& bound : registers) {
    if (bound.reg.covers(offset, size)) return &bound;
  }
  return nullptr;
}

void DispatchChoice::add(std::string_view device, std::string_view key, std::string_view value) {
  if (key == "dispatch" && value == "partial") {
    partial = true;
    return;
  }
  auto path = io::path_from_string(value);
  if (!path) {
    throw UsageError(fmt::format("{}: {}={}: unknown path (exit, coalesced, ioeventfd, ioregionfd, fastpath{})", device,
                                 key, value, key == "dispatch" ? ", partial" : ""));
  }
  if (*path == io::Path::hypercall) {
    throw UsageError(fmt::format("{}: {}=hypercall: the guest chooses the hypercall (it names the address in "
                                 "registers, see docs/HYPERCALL.md); there is nothing to bind",
                                 device, key));
  }
  if (key == "dispatch") {
    device_path = *path;
  } else {
    overrides.emplace_back(std::string(key.substr(sizeof("dispatch.") - 1)), *path);
  }
}

std::optional<std::string> why_illegal(const io::Register& reg, io::Path path) {
  auto effect = std::string(io::to_string(reg.effect));
  switch (path) {
    case io::Path::exit:
      return std::nullopt;
    case io::Path::coalesced:
      if (!writable(reg)) return "is read-only; only writes can be coalesced";
      if (reg.effect != io::Effect::latch) return fmt::format("is {}; it cannot be coalesced", effect);
      return std::nullopt;
    case io::Path::ioeventfd:
      if (!writable(reg)) return "is read-only; an ioeventfd carries writes";
      if (reg.effect != io::Effect::doorbell) return fmt::format("is {}; only a doorbell can be an ioeventfd", effect);
      if (reg.width != 1 && reg.width != 2 && reg.width != 4 && reg.width != 8) {
        return fmt::format("is {} bytes wide; an ioeventfd covers 1, 2, 4 or 8", reg.width);
      }
      return std::nullopt;
    case io::Path::fastpath:
      if (!readable(reg)) return "is write-only; the fastpath serves reads";
      if (reg.effect == io::Effect::read_sensitive) return "is read-sensitive; its reads must take the device lock";
      if (reg.effect != io::Effect::constant && !reg.lockless_read) {
        return "is neither constant nor safe to read without the device lock";
      }
      return std::nullopt;
    case io::Path::ioregionfd:
      return "ioregionfd carries whole devices (dispatch=ioregionfd), not single registers";
    case io::Path::hypercall:
      return "the hypercall path is chosen by the guest";
  }
  return "unknown path";
}

std::map<unsigned, WindowBinding> bind_registers(std::string_view device, std::span<const io::RegisterBlock> blocks,
                                                     const DispatchChoice& choice) {
  std::map<unsigned, WindowBinding> bindings;
  for (const auto& block : blocks) bindings[block.region].whole = io::Path::exit;

  if (choice.whole_device_ioregionfd()) {
    if (!choice.overrides.empty()) {
      throw UsageError(fmt::format("{}: with dispatch=ioregionfd the device server carries every access; "
                                   "dispatch.{} cannot be chosen as well",
                                   device, choice.overrides.front().first));
    }
    for (auto& [region, binding] : bindings) binding.whole = io::Path::ioregionfd;
    return bindings;
  }

  // path per (block index, register index); exit unless chosen otherwise
  std::map<std::pair<size_t, size_t>, io::Path> chosen;
  if (choice.partial) {
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
        for (io::Path cheapest : {io::Path::coalesced, io::Path::ioeventfd, io::Path::fastpath}) {
          if (!why_illegal(blocks[b].registers[r], cheapest)) {
            chosen[{b, r}] = cheapest;
            break;
          }
        }
      }
    }
    if (chosen.empty()) {
      throw UsageError(fmt::format("{}: dispatch=partial: no register of this device has a path cheaper than exit",
                                   device));
    }
  } else if (choice.device_path != io::Path::exit) {
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
        if (!why_illegal(blocks[b].registers[r], choice.device_path)) chosen[{b, r}] = choice.device_path;
      }
    }
    if (chosen.empty()) {
      throw UsageError(fmt::format("{}: dispatch={}: no register of this device can take that path", device,
                                   io::to_string(choice.device_path)));
    }
  }

  for (const auto& [name, path] : choice.overrides) {
    bool matched = false;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const auto& block = blocks[b];
      for (size_t r = 0; r < block.registers.size(); ++r) {
        const auto& reg = block.registers[r];
        std::string qualified = fmt::format("{}.{}", block.name, reg.name);
        if (name != reg.name && name != block.name && name != qualified) continue;
        matched = true;
        if (auto why = why_illegal(reg, path)) {
          throw UsageError(fmt::format("{} {}", describe(device, block, reg), *why));
        }
        chosen[{b, r}] = path;
      }
    }
    if (!matched) {
      std::string names;
      for (const auto& block : blocks) {
        for (const auto& reg : block.registers) names += fmt::format("{}{}.{}", names.empty() ? "" : ", ", block.name, reg.name);
      }
      throw UsageError(fmt::format("{}: dispatch.{}: no such register or window (registers: {})", device, name,
                                   names.empty() ? "none: this device has no register table" : names));
    }
  }

  for (const auto& [index, path] : chosen) {
    if (path == io::Path::exit) continue;
    const auto& block = blocks[index.first];
    bindings[block.region].registers.push_back({block.registers[index.second], path});
  }
  return bindings;
}

}  // namespace iovmm::dispatch
