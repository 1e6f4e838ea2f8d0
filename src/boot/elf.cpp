#include "boot/elf.h"

#include <elf.h>
#include <fmt/core.h>

#include <cstring>

#include "common/error.h"

namespace iovmm::boot {
namespace {

// True when [offset, offset + size) lies inside a buffer of `total` bytes, without overflowing.
bool fits(uint64_t offset, uint64_t size, uint64_t total) { return offset <= total && size <= total - offset; }

template <typename T>
T load(std::span<const uint8_t> data, uint64_t offset) {
  T value;
  std::memcpy(&value, data.data() + offset, sizeof(T));
  return value;
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace

bool ElfFile::has_elf_magic(std::span<const uint8_t> data) {
  return data.size() >= SELFMAG && std::memcmp(data.data(), ELFMAG, SELFMAG) == 0;
}

ElfFile::ElfFile(std::string file_name, std::span<const uint8_t> data) : file_name_(std::move(file_name)), data_(data) {
  if (!has_elf_magic(data_)) fail("not an ELF file (no \\x7fELF magic)");
  if (data_.size() < EI_NIDENT) fail(fmt::format("truncated ELF header ({} bytes)", data_.size()));
  switch (data_[EI_CLASS]) {
    case ELFCLASS32:
      is_64bit_ = false;
      break;
    case ELFCLASS64:
      is_64bit_ = true;
      break;
    default:
      fail(fmt::format("unknown ELF class {}", data_[EI_CLASS]));
  }
  if (data_[EI_DATA] != ELFDATA2LSB) fail("not a little-endian ELF file");
  if (data_[EI_VERSION] != EV_CURRENT) fail(fmt::format("unknown ELF version {}", data_[EI_VERSION]));
  if (is_64bit_) {
    parse<Elf64_Ehdr, Elf64_Phdr>();
  } else {
    parse<Elf32_Ehdr, Elf32_Phdr>();
  }
}

template <typename Ehdr, typename Phdr>
void ElfFile::parse() {
  if (data_.size() < sizeof(Ehdr)) {
    fail(fmt::format("truncated ELF header ({} bytes, a {}-bit header needs {})", data_.size(), is_64bit_ ? 64 : 32,
                     sizeof(Ehdr)));
  }
  const auto header = load<Ehdr>(data_, 0);
  const uint16_t expected_machine = is_64bit_ ? EM_X86_64 : EM_386;
  if (header.e_machine != expected_machine) {
    fail(fmt::format("ELF machine {} is not {}", header.e_machine, is_64bit_ ? "x86-64" : "i386"));
  }
  if (header.e_type != ET_EXEC && header.e_type != ET_DYN) {
    fail(fmt::format("ELF type {} is not an executable", header.e_type));
  }
  entry_ = header.e_entry;
  if (header.e_phnum == 0) fail("no program headers");
  if (header.e_phnum == PN_XNUM) fail("extended program header numbering (PN_XNUM) is not supported");
  if (header.e_phentsize != sizeof(Phdr)) {
    fail(fmt::format("program header size {} is not {}", header.e_phentsize, sizeof(Phdr)));
  }
  // The whole table first, so a truncated file is reported as such rather than as a segment's data missing.
  // phoff is 64-bit and hostile; i * sizeof(Phdr) is small, so only the addition can overflow.
  auto entry_offset = [&](size_t i) { return header.e_phoff + i * sizeof(Phdr); };
  for (size_t i = 0; i < header.e_phnum; ++i) {
    if (entry_offset(i) < header.e_phoff || !fits(entry_offset(i), sizeof(Phdr), data_.size())) {
      fail(fmt::format("program header {} runs past the end of the file", i));
    }
  }
  for (size_t i = 0; i < header.e_phnum; ++i) {
    const auto phdr = load<Phdr>(data_, entry_offset(i));
    ElfSegment segment{i,          phdr.p_type,   phdr.p_flags, phdr.p_offset, phdr.p_vaddr,
                       phdr.p_paddr, phdr.p_filesz, phdr.p_memsz, phdr.p_align};
    if (segment.type == PT_LOAD || segment.type == PT_NOTE) {
      if (!fits(segment.offset, segment.filesz, data_.size())) {
        fail(fmt::format("program header {}: its data (offset {:#x}, {:#x} bytes) runs past the end of the file", i,
                         segment.offset, segment.filesz));
      }
    }
    if (segment.type == PT_LOAD && segment.filesz > segment.memsz) {
      fail(fmt::format("program header {}: file size {:#x} is larger than memory size {:#x}", i, segment.filesz,
                       segment.memsz));
    }
    segments_.push_back(segment);
  }
}

std::span<const uint8_t> ElfFile::file_bytes(const ElfSegment& segment) const {
  return data_.subspan(segment.offset, segment.filesz);
}

std::vector<ElfNote> ElfFile::notes() const {
  std::vector<ElfNote> result;
  for (const auto& segment : segments_) {
    if (segment.type != PT_NOTE) continue;
    // Notes are 4-byte aligned in practice even in 64-bit files; honour an explicit 8-byte alignment.
    const uint64_t alignment = segment.align == 8 ? 8 : 4;
    const auto bytes = file_bytes(segment);
    uint64_t offset = 0;
    while (offset < bytes.size()) {
      if (!fits(offset, sizeof(Elf32_Nhdr), bytes.size())) {
        fail(fmt::format("program header {}: note header at offset {:#x} runs past the end of the segment",
                         segment.index, offset));
      }
      // Elf32_Nhdr and Elf64_Nhdr are the same three 32-bit words.
      const auto note = load<Elf32_Nhdr>(bytes, offset);
      const uint64_t name_offset = offset + sizeof(Elf32_Nhdr);
      // Padding aligns the offsets themselves (as readelf and Linux compute them), which differs from padding the
      // name's length once the alignment is 8: the 12-byte header is not a multiple of 8.
      const uint64_t desc_offset = align_up(name_offset + note.n_namesz, alignment);
      const uint64_t next = align_up(desc_offset + note.n_descsz, alignment);
      if (!fits(name_offset, note.n_namesz, bytes.size()) || !fits(desc_offset, note.n_descsz, bytes.size())) {
        fail(fmt::format("program header {}: note at offset {:#x} runs past the end of the segment", segment.index,
                         offset));
      }
      std::string name(reinterpret_cast<const char*>(bytes.data() + name_offset), note.n_namesz);
      if (!name.empty() && name.back() == '\0') name.pop_back();
      result.push_back(ElfNote{std::move(name), note.n_type, bytes.subspan(desc_offset, note.n_descsz)});
      offset = next;
    }
  }
  return result;
}

std::optional<ElfNote> ElfFile::find_note(std::string_view name, uint32_t type) const {
  for (auto& note : notes()) {
    if (note.name == name && note.type == type) return note;
  }
  return std::nullopt;
}

void ElfFile::fail(std::string_view problem) const { throw UsageError(fmt::format("{}: {}", file_name_, problem)); }

}  // namespace iovmm::boot
