// Fuzz target: the kernel file, parsed and loaded into 16 MiB of guest RAM. The file is user input rather than guest
// input, but it is the first thing an untrusted image controls: every offset, size and address in it is hostile.
// A UsageError is the expected answer to a bad file; anything else (a crash, a sanitizer report, another exception
// type, or a "successful" load that put the image somewhere it must not be) is a bug.
//
// boot::load_kernel only takes a path; its work is done by span-based functions (ElfFile, find_multiboot_header,
// load_multiboot, pvh_entry_point, load_pvh), so the target calls those in load_kernel's order (bzImage header,
// then Multiboot, then PVH) and skips the file system. Keep recognise() in step with src/boot/kernel_loader.cpp.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "boot/elf.h"
#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "boot/multiboot.h"
#include "boot/pvh.h"
#include "common/error.h"
#include "common/log.h"

namespace {

using namespace iovmm;
using namespace iovmm::boot;

constexpr uint64_t kRamSize = 16 * kMiB;

// One initrd, so module placement (which depends on where the fuzzed kernel ends) is exercised too.
std::string make_initrd() {
  char dir[] = "/tmp/iovmm-fuzz-XXXXXX";
  if (!::mkdtemp(dir)) {
    std::perror("mkdtemp");
    std::abort();
  }
  const std::string path = std::string(dir) + "/initrd";
  std::ofstream(path, std::ios::binary) << std::string(5000, 'i');
  return path;
}

struct Fixture {
  // Reused across inputs: the loaders zero what they load (bss included), and a fresh memfd per input would cost
  // more than the parsing under test.
  GuestMemory memory{pc_ram_ranges(kRamSize)};
  KernelConfig config;
  std::string initrd;
  Fixture() : initrd(make_initrd()) {
    config.path = "fuzz-kernel";
    config.cmdline = "console=ttyS0 fuzz";
    config.initrds = {initrd + " initrd-args"};
    config.rsdp_paddr = kAcpiArea.start;
  }
  ~Fixture() {
    ::unlink(initrd.c_str());
    ::rmdir(initrd.substr(0, initrd.rfind('/')).c_str());
  }
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_kernel_loader: %s\n", what.c_str());
  std::abort();
}

BootSetup recognise(GuestMemory& memory, std::span<const uint8_t> file, const KernelConfig& config) {
  if (file.empty()) throw UsageError("empty");  // read_file refuses an empty file before anything parses it
  if (file.size() >= 0x206 && std::memcmp(file.data() + 0x202, "HdrS", 4) == 0) throw UsageError("bzImage");
  if (const auto header = find_multiboot_header(file)) return load_multiboot(memory, file, *header, config);
  if (ElfFile::has_elf_magic(file)) {
    const ElfFile elf(config.path, file);
    if (const auto entry = pvh_entry_point(elf)) return load_pvh(memory, elf, *entry, config);
  }
  throw UsageError("not a kernel");
}

// What a successful load promises: a known protocol, an image that starts and ends in RAM (the extent is the
// bounding box of all segments, so it may span holes and firmware areas between them), and the entry state it
// describes.
void check(const GuestMemory& memory, const BootSetup& setup) {
  if (setup.protocol != "pvh" && setup.protocol != "multiboot") fail("unknown protocol " + setup.protocol);
  if (setup.image_start > setup.image_end) fail("inverted image extent");
  if (setup.image_start == setup.image_end) fail("empty image accepted");
  if (!memory.contains(setup.image_start, 1) || !memory.contains(setup.image_end - 1, 1)) {
    fail("image extent does not start and end in RAM");
  }
  if (setup.cpu.eip != setup.entry_eip || setup.cpu.ebx != setup.ebx) fail("entry state differs from the boot setup");
}

// The ACPI area holds tables the machine wrote before loading the kernel; nothing the loader places (segments, bss,
// modules, boot information) may land there. A canary pattern checks it across each load.
constexpr uint8_t kCanary = 0xc3;
void fill_acpi_canary(GuestMemory& memory) {
  auto area = memory.span(kAcpiArea.start, kAcpiArea.size);
  std::memset(area.data(), kCanary, area.size());
}
void check_acpi_canary(GuestMemory& memory) {
  // memcmp, not a loop here: this file is built with -fsanitize=fuzzer, which would trace every byte comparison.
  static const std::vector<uint8_t> expected(kAcpiArea.size, kCanary);
  if (std::memcmp(memory.span(kAcpiArea.start, kAcpiArea.size).data(), expected.data(), expected.size()) != 0) {
    fail("the loader wrote into the ACPI area");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  log::set_level(log::Level::error);  // e.g. "multiboot video mode ignored" on every other input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  // IOVMM_FUZZ_VERBOSE=1 says what became of each input (to see which seeds load, when running with -runs=0).
  static const bool verbose = std::getenv("IOVMM_FUZZ_VERBOSE") != nullptr;
  fill_acpi_canary(fixture.memory);
  try {
    const BootSetup setup = recognise(fixture.memory, {data, size}, fixture.config);
    check(fixture.memory, setup);
    if (verbose) std::fprintf(stderr, "loaded: %s, entry %#x\n", setup.protocol.c_str(), setup.entry_eip);
  } catch (const UsageError& e) {
    // The expected answer to a malformed or unsupported kernel.
    if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
  } catch (const std::exception& e) {
    fail(std::string("not a UsageError: ") + e.what());
  }
  check_acpi_canary(fixture.memory);
  return 0;
}
