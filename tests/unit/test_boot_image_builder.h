// Test helpers for the boot tests: a small ELF writer (32/64-bit, PT_LOAD segments, one PT_NOTE segment) and files
// in the unit tests' temporary directory.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "memory/guest_memory.h"

namespace iovmm::boot::testing {

// The message of the UsageError `f` throws; a test failure (and "") when it throws nothing or something else.
template <typename F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, nothing thrown";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (haystack) << "' lacks '" << (needle) << "'"


struct TestSegment {
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t memsz = 0;  // 0: same as data.size()
  uint64_t vaddr = UINT64_MAX;  // UINT64_MAX: same as paddr
};

struct TestNote {
  std::string name;
  uint32_t type;
  std::vector<uint8_t> desc;
};

template <typename T>
void put(std::vector<uint8_t>& out, size_t offset, const T& value) {
  if (out.size() < offset + sizeof(T)) out.resize(offset + sizeof(T));
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

class ElfBuilder {
 public:
  explicit ElfBuilder(bool is_64bit) : is_64bit_(is_64bit) {}
  ElfBuilder& entry(uint64_t address) {
    entry_ = address;
    return *this;
  }
  ElfBuilder& segment(TestSegment s) {
    segments_.push_back(std::move(s));
    return *this;
  }
  ElfBuilder& note(TestNote n) {
    notes_.push_back(std::move(n));
    return *this;
  }

  [[nodiscard]] std::vector<uint8_t> build() const {
    return is_64bit_ ? build_as<Elf64_Ehdr, Elf64_Phdr>(ELFCLASS64, EM_X86_64)
                     : build_as<Elf32_Ehdr, Elf32_Phdr>(ELFCLASS32, EM_386);
  }

 private:
  static std::vector<uint8_t> note_bytes(const TestNote& n) {
    std::vector<uint8_t> out;
    const uint32_t header[3] = {static_cast<uint32_t>(n.name.size() + 1), static_cast<uint32_t>(n.desc.size()),
                                n.type};
    put(out, 0, header);
    out.insert(out.end(), n.name.begin(), n.name.end());
    out.push_back(0);
    while (out.size() % 4) out.push_back(0);
    out.insert(out.end(), n.desc.begin(), n.desc.end());
    while (out.size() % 4) out.push_back(0);
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
      out.insert(out.end(), data.begin(), data.end());
    };
    for (const auto& s : segments_) {
      add_phdr(PT_LOAD, s.paddr, s.vaddr == UINT64_MAX ? s.paddr : s.vaddr, s.data,
               s.memsz ? s.memsz : s.data.size(), 0x1000);
    }
    if (!notes_.empty()) {
      std::vector<uint8_t> all;
      for (const auto& n : notes_) {
        const auto b = note_bytes(n);
        all.insert(all.end(), b.begin(), b.end());
      }
      add_phdr(PT_NOTE, 0, 0, all, 0, 4);
    }
    return out;
  }

  bool is_64bit_;
  uint64_t entry_ = 0;
  std::vector<TestSegment> segments_;
  std::vector<TestNote> notes_;
};

// A fresh directory under IOVMM_TEST_TMPDIR for one test.
inline std::filesystem::path test_dir(const std::string& name) {
  const auto dir = std::filesystem::path(IOVMM_TEST_TMPDIR) / "boot" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string write_test_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

// A value from guest memory, failing the test (not crashing it) when the address is not RAM.
template <typename T>
T read(const GuestMemory& memory, uint64_t gpa) {
  const auto value = memory.read_obj<T>(gpa);
  EXPECT_TRUE(value.has_value()) << std::hex << gpa;
  return value.value_or(T{});
}

inline std::string read_string(const GuestMemory& memory, uint64_t gpa) {
  std::string out;
  for (char c; (c = static_cast<char>(read<uint8_t>(memory, gpa))) != 0; ++gpa) out.push_back(c);
  return out;
}

}  // namespace iovmm::boot::testing
