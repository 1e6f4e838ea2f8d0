// Helpers shared by the boot protocols: reading the user's files, placing bytes in guest RAM with checks that say
// which file and which part did not fit, loading ELF segments, and the module ("initrd") specifications.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boot/elf.h"
#include "memory/guest_memory.h"

namespace iovmm::boot {

// Guest-physical extent of what a protocol loaded, [start, end).
struct ImageExtent {
  uint64_t start = UINT64_MAX;
  uint64_t end = 0;
  void include(uint64_t area_start, uint64_t area_end);
  [[nodiscard]] bool empty() const { return end == 0; }
};

// How much read_file may take, and why, for the message that refuses a larger file.
struct ReadLimit {
  uint64_t bytes;
  std::string reason;  // "guest RAM (128 MiB)"
};

// Whole file contents, at most `limit.bytes`. UsageError "<what> <path>: ..." when it cannot be read, is not a
// regular file (a FIFO, /dev/zero: opened without blocking and refused before anything is read), is larger than the
// limit or is empty.
[[nodiscard]] std::vector<uint8_t> read_file(const std::string& path, std::string_view what, const ReadLimit& limit);

// The limits for a kernel and an initrd, from guest RAM: an initrd is loaded whole, so it must fit in RAM; a kernel
// ELF also carries what is not loaded (symbols, debug info: a debug vmlinux is several hundred MiB), so it may be
// larger than RAM by kKernelFileSlack.
inline constexpr uint64_t kKernelFileSlack = uint64_t{1} << 30;
[[nodiscard]] ReadLimit kernel_file_limit(const GuestMemory& memory);
[[nodiscard]] ReadLimit initrd_file_limit(const GuestMemory& memory);

// Throws UsageError "<what> <entry> lies outside guest RAM" when the entry point is not RAM: the guest could only
// die of an emulation error there.
void check_entry_point(const GuestMemory& memory, uint64_t entry, std::string_view what);

// An --initrd argument: "file" or "file args". The file is what gets loaded; the whole string is the module's
// command line, as QEMU does for multiboot modules.
struct ModuleSpec {
  std::string path;
  std::string arguments;  // after the first space; may be empty
  std::string full;       // path and arguments, as given
};
[[nodiscard]] ModuleSpec parse_module_spec(const std::string& spec);

// Throws UsageError "<what> at 0x... (N bytes) ..." when [gpa, gpa+size) overflows, is not entirely guest RAM, or
// overlaps the firmware/boot-information areas.
void check_load_area(const GuestMemory& memory, uint64_t gpa, uint64_t size, std::string_view what);

// Copies `bytes` to `gpa` and zeroes up to `memory_size` (the bss); checks the area with check_load_area first.
void load_bytes(GuestMemory& memory, uint64_t gpa, std::span<const uint8_t> bytes, uint64_t memory_size,
                std::string_view what);

// Loads every non-empty PT_LOAD segment at its physical address; returns the loaded extent.
// `below` bounds the end of each segment (e.g. 4 GiB for a 32-bit entry protocol).
[[nodiscard]] ImageExtent load_elf_segments(GuestMemory& memory, const ElfFile& elf, uint64_t below);

// Writes a NUL-terminated string at `gpa` inside `area`; UsageError "<what> is N bytes; the limit is M" when it
// does not fit.
void write_string(GuestMemory& memory, uint64_t gpa, std::string_view text, uint64_t area_end, std::string_view what);

// Writes `count` objects to `area` (memory map, module list), failing with Error when the area is too small.
void write_table(GuestMemory& memory, uint64_t gpa, uint64_t area_size, const void* data, size_t bytes,
                 std::string_view what);

[[nodiscard]] constexpr uint64_t page_align_up(uint64_t value) { return (value + 4095) & ~uint64_t{4095}; }
[[nodiscard]] constexpr uint64_t page_align_down(uint64_t value) { return value & ~uint64_t{4095}; }

}  // namespace iovmm::boot
