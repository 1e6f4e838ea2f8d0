// The machine's one call to boot a kernel: reads the file, recognises the protocol in QEMU's order (Linux bzImage
// header first, then Multiboot, then a PVH ELF) and loads it with its command line and initrds.
#pragma once

#include "boot/boot_setup.h"
#include "memory/guest_memory.h"

namespace iovmm::boot {

// Throws UsageError for anything the user can fix: unreadable, empty, malformed or unsupported kernel, initrds that
// are missing or do not fit, a command line that is too long, RAM too small for the image.
[[nodiscard]] BootSetup load_kernel(GuestMemory& memory, const KernelConfig& config);

}  // namespace iovmm::boot
