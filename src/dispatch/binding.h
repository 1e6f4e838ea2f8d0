// From a device's register table and the user's choice (--device TYPE,dispatch=PATH,dispatch.NAME=PATH) to the path
// each register takes. A choice that the register's effect class forbids is refused before anything runs, with one
// line naming the device, the register and the reason.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/bus.h"
#include "io/registers.h"

namespace iovmm::dispatch {

// The paths chosen for one of a device's windows: what route.h compiles into the window's route.
struct WindowBinding {
  struct BoundRegister {
    io::Register reg;
    io::Path path;
  };
  io::Path whole = io::Path::exit;       // exit, or ioregionfd when a device server carries the whole window
  std::vector<BoundRegister> registers;  // registers taking another path than exit

  [[nodiscard]] const BoundRegister* find(uint64_t offset, unsigned size) const;
};

struct DispatchChoice {
  io::Path device_path = io::Path::exit;                    // dispatch=PATH: wherever legal
  // dispatch=partial: partial device acceleration — each register on the cheapest path its effect class allows
  // (latches coalesced, doorbells ioeventfd, lock-free reads fastpath), the rest by exit.
  bool partial = false;
  std::vector<std::pair<std::string, io::Path>> overrides;  // dispatch.NAME=PATH: exactly there, or an error

  // `key` is "dispatch" or "dispatch.NAME". Throws UsageError on an unknown path.
  void add(std::string_view device, std::string_view key, std::string_view value);
  [[nodiscard]] bool whole_device_ioregionfd() const { return device_path == io::Path::ioregionfd; }
};

// Why `path` cannot carry accesses to `reg`, or nothing when it can.
[[nodiscard]] std::optional<std::string> why_illegal(const io::Register& reg, io::Path path);

// Bindings per region (keyed by RegisterBlock::region) for a device's register blocks. NAME in an override is a
// register ("count", every block that has one), a block ("mmio": each of its registers) or "BLOCK.REGISTER".
// Throws UsageError for an unknown name, an illegal choice, or a device-wide path no register can take.
[[nodiscard]] std::map<unsigned, WindowBinding> bind_registers(std::string_view device,
                                                                   std::span<const io::RegisterBlock> blocks,
                                                                   const DispatchChoice& choice);

}  // namespace iovmm::dispatch
