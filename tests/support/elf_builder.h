// A small ELF writer for tests and fuzz seeds: 32- or 64-bit x86 executables with PT_LOAD segments and one PT_NOTE
// segment. No test framework here, so the fuzz seed writer can use it as well as the unit tests.
#pragma once

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

namespace iovmm::test_support {

template <typename T>
void put(std::vector<uint8_t>& out, size_t offset, const T& value) {
  if (out.size() < offset + sizeof(T)) out.resize(offset + sizeof(T));
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

// resize + copy rather than vector::insert(end, first, last): at -O3, GCC 12 reports a false -Warray-bounds for
// insert into a vector whose size it knows (see src/boot/acpi/append.h).
template <typename Range>
void append(std::vector<uint8_t>& out, const Range& more) {
  const size_t offset = out.size();
  out.resize(offset + std::size(more));
  std::copy(std::begin(more), std::end(more), out.begin() + static_cast<std::ptrdiff_t>(offset));
}

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

struct ElfSegment {
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t memsz = 0;           // 0: same as data.size()
  uint64_t vaddr = UINT64_MAX;  // UINT64_MAX: same as paddr
};

struct ElfNote {
  std::string name;
  uint32_t type;
  std::vector<uint8_t> desc;
};

class ElfBuilder {
 public:
  explicit ElfBuilder(bool is_64bit) : is_64bit_(is_64bit) {}
  ElfBuilder& entry(uint64_t address) {
    entry_ = address;
    return *this;
  }
  ElfBuilder& segment(ElfSegment s) {
    segments_.push_back(std::move(s));
    return *this;
  }
  ElfBuilder& note(ElfNote n) {
    notes_.push_back(std::move(n));
    return *this;
  }
  // The PT_NOTE segment's alignment: 4 as most toolchains write it, 8 as .note.gnu.property has it. Offsets inside
  // the segment are padded to it, as readelf and Linux read them.
  ElfBuilder& note_alignment(size_t alignment) {
    note_alignment_ = alignment;
    return *this;
  }

  [[nodiscard]] std::vector<uint8_t> build() const {
    return is_64bit_ ? build_as<Elf64_Ehdr, Elf64_Phdr>(ELFCLASS64, EM_X86_64)
                     : build_as<Elf32_Ehdr, Elf32_Phdr>(ELFCLASS32, EM_386);
  }

 private:
  std::vector<uint8_t> note_bytes(const ElfNote& n) const {
    std::vector<uint8_t> out;
    const uint32_t header[3] = {static_cast<uint32_t>(n.name.size() + 1), static_cast<uint32_t>(n.desc.size()),
                                n.type};
    put(out, 0, header);
    append(out, n.name);
    out.push_back(0);
    while (out.size() % note_alignment_) out.push_back(0);
    append(out, n.desc);
    while (out.size() % note_alignment_) out.push_back(0);
    return out;
  }

  template <typename Ehdr, typename Phdr>
  std::vector<uint8_t> build_as(uint8_t elf_class, uint16_t machine) const {
    const size_t phnum = segments_.size() + (notes_.empty() ? 0 : 1);
    std::vector<uint8_t> out(sizeof(Ehdr) + phnum * sizeof(Phdr));
    Ehdr ehdr{};
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = elf_class;
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_ident[EI_VERSION] = EV_CURRENT;
    ehdr.e_type = ET_EXEC;
    ehdr.e_machine = machine;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_entry = static_cast<decltype(ehdr.e_entry)>(entry_);
    ehdr.e_phoff = sizeof(Ehdr);
    ehdr.e_ehsize = sizeof(Ehdr);
    ehdr.e_phentsize = sizeof(Phdr);
    ehdr.e_phnum = static_cast<uint16_t>(phnum);
    put(out, 0, ehdr);
    size_t index = 0;
    auto add_phdr = [&](uint32_t type, uint64_t paddr, uint64_t vaddr, const std::vector<uint8_t>& data,
                        uint64_t memsz, uint64_t align) {
      Phdr phdr{};
      phdr.p_type = type;
      phdr.p_flags = PF_R | PF_X;
      phdr.p_offset = static_cast<decltype(phdr.p_offset)>(out.size());
      phdr.p_paddr = static_cast<decltype(phdr.p_paddr)>(paddr);
      phdr.p_vaddr = static_cast<decltype(phdr.p_vaddr)>(vaddr);
      phdr.p_filesz = static_cast<decltype(phdr.p_filesz)>(data.size());
      phdr.p_memsz = static_cast<decltype(phdr.p_memsz)>(memsz);
      phdr.p_align = static_cast<decltype(phdr.p_align)>(align);
      put(out, sizeof(Ehdr) + index++ * sizeof(Phdr), phdr);
      append(out, data);
    };
    for (const auto& s : segments_) {
      add_phdr(PT_LOAD, s.paddr, s.vaddr == UINT64_MAX ? s.paddr : s.vaddr, s.data,
               s.memsz ? s.memsz : s.data.size(), 0x1000);
    }
    if (!notes_.empty()) {
      std::vector<uint8_t> all;
      for (const auto& n : notes_) {
        append(all, note_bytes(n));
      }
      add_phdr(PT_NOTE, 0, 0, all, all.size(), note_alignment_);  // memsz = filesz, as toolchains write it
    }
    return out;
  }

  bool is_64bit_;
  uint64_t entry_ = 0;
  size_t note_alignment_ = 4;
  std::vector<ElfSegment> segments_;
  std::vector<ElfNote> notes_;
};

}  // namespace iovmm::test_support
