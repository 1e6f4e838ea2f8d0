// What the machine passes to the kernel loader, and what it gets back: the protocol used, the CPU state to enter
// with, and where the image went.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "boot/entry_state.h"

namespace iovmm::boot {

struct KernelConfig {
  std::string path;                  // the kernel file
  std::string cmdline;               // --append
  std::vector<std::string> initrds;  // each "file" or "file args" (see parse_module_spec)
  uint64_t rsdp_paddr = 0;           // from write_acpi_tables; 0 = no ACPI
};

struct BootSetup {
  std::string protocol;  // "pvh" or "multiboot"
  uint32_t entry_eip = 0;
  uint32_t eax = 0;
  uint32_t ebx = 0;
  uint64_t image_start = 0;  // guest-physical extent of the kernel image, [start, end)
  uint64_t image_end = 0;
  EntryState cpu;  // full register/segment state; eip/eax/ebx repeat the fields above
};

}  // namespace iovmm::boot
