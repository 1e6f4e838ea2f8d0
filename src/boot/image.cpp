#include "boot/image.h"

#include <elf.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "boot/layout.h"
#include "common/error.h"
#include "common/fd.h"

namespace iovmm::boot {

void ImageExtent::include(uint64_t area_start, uint64_t area_end) {
  start = std::min(start, area_start);
  end = std::max(end, area_end);
}

namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / kMiB); }

}  // namespace

std::vector<uint8_t> read_file(const std::string& path, std::string_view what, const ReadLimit& limit) {
  auto fail = [&](int err) -> UsageError {
    return UsageError(fmt::format("{} {}: {}", what, path, std::strerror(err)));
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. Nothing is read from
  // anything but a regular file, so the flag changes nothing else.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) throw fail(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw fail(errno);
  if (S_ISDIR(st.st_mode)) throw fail(EISDIR);
  // A character device (/dev/zero, /dev/urandom, a symlink to one) never ends; a FIFO may not.
  if (!S_ISREG(st.st_mode)) {
    throw UsageError(fmt::format("{} {}: {}; expected a regular file", what, path, file_type_name(st.st_mode)));
  }
  auto too_large = [&](uint64_t size) {
    return UsageError(fmt::format("{} {}: {} is more than {}, the most it can be: {}", what, path, mib(size),
                                  mib(limit.bytes), limit.reason));
  };
  const auto size = static_cast<uint64_t>(std::max<off_t>(st.st_size, 0));
  if (size > limit.bytes) throw too_large(size);
  std::vector<uint8_t> data;
  data.reserve(size);
  // Read to EOF rather than trusting st_size (the file may change size under us), but never past the limit.
  uint8_t chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(errno);
    }
    if (n == 0) break;
    if (static_cast<uint64_t>(n) > limit.bytes - data.size()) {
      throw too_large(data.size() + static_cast<uint64_t>(n));  // it grew after fstat
    }
    data.insert(data.end(), chunk, chunk + n);
  }
  if (data.empty()) throw UsageError(fmt::format("{} {}: file is empty", what, path));
  return data;
}

ReadLimit kernel_file_limit(const GuestMemory& memory) {
  return {memory.total_size() + kKernelFileSlack,
          fmt::format("guest RAM ({}) plus 1 GiB for what an ELF does not load", mib(memory.total_size()))};
}

ReadLimit initrd_file_limit(const GuestMemory& memory) {
  return {memory.total_size(), fmt::format("guest RAM ({}), where it is loaded whole", mib(memory.total_size()))};
}

void check_entry_point(const GuestMemory& memory, uint64_t entry, std::string_view what) {
  if (!memory.contains(entry, 1)) {
    throw UsageError(fmt::format("{} {:#x} lies outside guest RAM ({} MiB): the guest could not run", what, entry,
                                 memory.total_size() / kMiB));
  }
}

ModuleSpec parse_module_spec(const std::string& spec) {
  ModuleSpec module;
  module.full = spec;
  const auto space = spec.find(' ');
  module.path = spec.substr(0, space);
  if (space != std::string::npos) module.arguments = spec.substr(space + 1);
  return module;
}

void check_load_area(const GuestMemory& memory, uint64_t gpa, uint64_t size, std::string_view what) {
  if (size == 0) return;
  if (gpa + size < gpa) {
    throw UsageError(fmt::format("{} at {:#x} ({} bytes) overflows the 64-bit address space", what, gpa, size));
  }
  if (!memory.contains(gpa, size)) {
    throw UsageError(fmt::format("{} at {:#x} ({} bytes) lies outside guest RAM ({} MiB)", what, gpa, size,
                                 memory.total_size() / kMiB));
  }
  for (const auto& area : firmware_areas()) {
    if (gpa < area.end() && area.start < gpa + size) {
      throw UsageError(fmt::format("{} at {:#x} ({} bytes) overlaps the firmware area at {:#x}-{:#x}", what, gpa,
                                   size, area.start, area.end() - 1));
    }
  }
}

void load_bytes(GuestMemory& memory, uint64_t gpa, std::span<const uint8_t> bytes, uint64_t memory_size,
                std::string_view what) {
  check_load_area(memory, gpa, memory_size, what);
  if (!memory.write(gpa, bytes.data(), bytes.size())) {
    throw Error(fmt::format("{}: write to guest RAM at {:#x} failed", what, gpa));
  }
  // Zero the bss in bounded chunks: it can be large, and RAM from a fresh memfd is zero but a reused one may not be.
  static const std::vector<uint8_t> zeros(64 * 1024);
  for (uint64_t done = bytes.size(); done < memory_size;) {
    const uint64_t chunk = std::min<uint64_t>(zeros.size(), memory_size - done);
    if (!memory.write(gpa + done, zeros.data(), chunk)) {
      throw Error(fmt::format("{}: zeroing guest RAM at {:#x} failed", what, gpa + done));
    }
    done += chunk;
  }
}

ImageExtent load_elf_segments(GuestMemory& memory, const ElfFile& elf, uint64_t below) {
  ImageExtent extent;
  for (const auto& segment : elf.segments()) {
    if (segment.type != PT_LOAD || segment.memsz == 0) continue;
    const std::string what = fmt::format("{}: segment {}", elf.file_name(), segment.index);
    check_load_area(memory, segment.paddr, segment.memsz, what);
    if (segment.paddr + segment.memsz > below) {
      throw UsageError(fmt::format("{} at {:#x} ends above {:#x}, where this boot protocol cannot reach", what,
                                   segment.paddr, below));
    }
    load_bytes(memory, segment.paddr, elf.file_bytes(segment), segment.memsz, what);
    extent.include(segment.paddr, segment.paddr + segment.memsz);
  }
  if (extent.empty()) throw UsageError(fmt::format("{}: no loadable segments", elf.file_name()));
  return extent;
}

void write_string(GuestMemory& memory, uint64_t gpa, std::string_view text, uint64_t area_end, std::string_view what) {
  if (gpa > area_end || text.size() + 1 > area_end - gpa) {
    throw UsageError(fmt::format("{} is {} bytes; the limit is {}", what, text.size(),
                                 area_end > gpa ? area_end - gpa - 1 : 0));
  }
  if (!memory.write(gpa, text.data(), text.size()) || !memory.write_obj(gpa + text.size(), uint8_t{0})) {
    throw Error(fmt::format("{}: write to guest RAM at {:#x} failed", what, gpa));
  }
}

void write_table(GuestMemory& memory, uint64_t gpa, uint64_t area_size, const void* data, size_t bytes,
                 std::string_view what) {
  if (bytes > area_size) {
    throw UsageError(fmt::format("{} needs {} bytes; only {} are reserved for it", what, bytes, area_size));
  }
  if (!memory.write(gpa, data, bytes)) throw Error(fmt::format("{}: write to guest RAM at {:#x} failed", what, gpa));
}

}  // namespace iovmm::boot
