// Test helpers for the boot tests: the shared ELF writer (tests/support/elf_builder.h), UsageError checks, files in
// the unit tests' temporary directory and guest-memory reads.
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
#include "../support/elf_builder.h"
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


using TestSegment = test_support::ElfSegment;
using TestNote = test_support::ElfNote;
using test_support::bytes_of;
using test_support::ElfBuilder;
using test_support::put;

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
