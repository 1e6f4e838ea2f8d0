// A read-only view of an x86 ELF file (32- or 64-bit, little-endian) held in memory. Every offset, size and count
// comes from the file and is treated as hostile: the constructor checks the ELF header and the program header table
// against the buffer, and a malformed file is a UsageError naming the file and the problem.
// Reference: System V gABI (ELF header, program headers, note sections); types from <elf.h>.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iovmm::boot {

struct ElfSegment {
  size_t index;  // position in the program header table, for messages
  uint32_t type;
  uint32_t flags;
  uint64_t offset;
  uint64_t vaddr;
  uint64_t paddr;
  uint64_t filesz;
  uint64_t memsz;
  uint64_t align;
};

struct ElfNote {
  std::string name;  // without the terminating NUL
  uint32_t type;
  std::span<const uint8_t> desc;
};

class ElfFile {
 public:
  // True when `data` starts with the ELF magic; says nothing about whether the rest is valid.
  [[nodiscard]] static bool has_elf_magic(std::span<const uint8_t> data);

  // `data` must outlive the ElfFile. Throws UsageError("<file_name>: <problem>") for anything malformed.
  ElfFile(std::string file_name, std::span<const uint8_t> data);

  [[nodiscard]] const std::string& file_name() const { return file_name_; }
  [[nodiscard]] bool is_64bit() const { return is_64bit_; }
  [[nodiscard]] uint64_t entry() const { return entry_; }
  [[nodiscard]] const std::vector<ElfSegment>& segments() const { return segments_; }

  // The bytes of a segment that come from the file (filesz of them); checked in the constructor.
  [[nodiscard]] std::span<const uint8_t> file_bytes(const ElfSegment& segment) const;

  // Notes from all PT_NOTE segments. Throws UsageError when a note runs past its segment.
  [[nodiscard]] std::vector<ElfNote> notes() const;
  [[nodiscard]] std::optional<ElfNote> find_note(std::string_view name, uint32_t type) const;

 private:
  template <typename Ehdr, typename Phdr>
  void parse();
  [[noreturn]] void fail(std::string_view problem) const;

  std::string file_name_;
  std::span<const uint8_t> data_;
  bool is_64bit_ = false;
  uint64_t entry_ = 0;
  std::vector<ElfSegment> segments_;
};

}  // namespace iovmm::boot
