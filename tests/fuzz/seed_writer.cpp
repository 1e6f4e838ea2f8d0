// Writes the seed corpora of the fuzz targets: `fuzz_seed_writer DIR` creates DIR/<target>/<seed> files. The files
// checked in under tests/fuzz/corpus/ came from it; rerun it after changing an input format
// (build-fuzz/fuzz/fuzz_seed_writer tests/fuzz/corpus). Seeds are small, valid or nearly valid inputs that get the
// fuzzer past the magic numbers (ELF and Multiboot headers, PVH notes, CONFIG_ADDRESS values) at once.
#include <elf.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../support/elf_builder.h"
#include "boot/multiboot.h"
#include "boot/pvh.h"
#include "platform_records.h"

namespace {

using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

using iovmm::test_support::put;

void write(const fs::path& dir, const std::string& name, const Bytes& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// ---- kernel_loader: ELF images with PT_LOAD segments and an optional PT_NOTE; Multiboot images ----

using iovmm::test_support::ElfBuilder;
using iovmm::test_support::ElfNote;
using iovmm::test_support::ElfSegment;

Bytes le32(uint32_t v) { return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; }
Bytes le64(uint64_t v) {
  Bytes b = le32(uint32_t(v)), hi = le32(uint32_t(v >> 32));
  b.insert(b.end(), hi.begin(), hi.end());
  return b;
}

Bytes multiboot_header(uint32_t flags, uint32_t header_addr = 0, uint32_t load_addr = 0, uint32_t load_end = 0,
                       uint32_t bss_end = 0, uint32_t entry = 0) {
  using namespace iovmm::boot;
  const MultibootHeader h{kMultibootHeaderMagic, flags, 0u - kMultibootHeaderMagic - flags,
                          header_addr, load_addr, load_end, bss_end, entry};
  Bytes out;
  put(out, 0, h);
  if (!(flags & kMultibootAddressFields)) out.resize(12);
  return out;
}

void kernel_seeds(const fs::path& dir) {
  using namespace iovmm::boot;
  const Bytes code = {0xfa, 0xf4, 0xeb, 0xfd};  // cli; hlt; jmp .-3
  const ElfNote pvh4{"Xen", kXenElfNotePhys32Entry, le32(0x100000)};
  write(dir, "pvh64-note4.elf",
        ElfBuilder(true).entry(0x100000).segment({0x100000, code, 0x3000, 0xffffffff81000000}).note(pvh4).build());
  write(dir, "pvh64-note8-align8.elf",
        ElfBuilder(true)
            .entry(0x100000)
            .segment({0x100000, code, 0x1000, 0x100000})
            .segment({0x200000, code, 0x10000, 0x200000})
            .note({"Xen", kXenElfNotePhys32Entry, le64(0x100000)})
            .note_alignment(8)
            .build());
  write(dir, "pvh32-two-notes.elf",
        ElfBuilder(false)
            .entry(0x100000)
            .segment({0x100000, code, 0x2000, 0x100000})
            .note({"GNU", 3, Bytes(20, 0xab)})
            .note(pvh4)
            .build());
  write(dir, "elf64-no-note.elf", ElfBuilder(true).entry(0x100000).segment({0x100000, code, 0x1000, 0x100000}).build());

  // Multiboot in an ELF: the header sits at the start of the loaded code, within the first 8 KiB of the file.
  Bytes mb_code = multiboot_header(kMultibootPageAlignModules | kMultibootMemoryInfo);
  mb_code.insert(mb_code.end(), code.begin(), code.end());
  write(dir, "multiboot-elf32.elf",
        ElfBuilder(false).entry(0xc0100000).segment({0x100000, mb_code, 0x4000, 0xc0100000}).build());

  // Multiboot "a.out kludge": the header's address fields say where the file goes; header at file offset 0x40.
  Bytes aout(0x40, 0x90);
  const uint32_t load = 0x200000;
  const Bytes header = multiboot_header(kMultibootMemoryInfo | kMultibootAddressFields | kMultibootVideoMode,
                                        load + 0x40, load, 0, load + 0x3000, load + 0x60);
  aout.insert(aout.end(), header.begin(), header.end());
  aout.resize(0x60, 0x90);
  aout.insert(aout.end(), code.begin(), code.end());
  write(dir, "multiboot-aout.bin", aout);
  // The same with load_end_addr = bss_end_addr = load_addr: nothing to load (accepted today; see fuzz_kernel_loader).
  Bytes empty(0x40, 0x90);
  const Bytes empty_header = multiboot_header(kMultibootAddressFields, load + 0x40, load, load, load, load);
  empty.insert(empty.end(), empty_header.begin(), empty_header.end());
  write(dir, "multiboot-aout-empty.bin", empty);

  Bytes bz(0x210, 0);
  std::memcpy(bz.data() + 0x202, "HdrS", 4);
  write(dir, "bzimage-header.bin", bz);
}

// ---- platform_registers: record sequences (platform_records.h) ----

using iovmm::fuzz::Record;

struct Records {
  Bytes bytes;
  Records& add(uint8_t target, bool write, unsigned width, int32_t offset, uint64_t value = 0, unsigned repeat = 1,
               uint8_t tick = 0, uint8_t high = 0) {
    const Record r{target, iovmm::fuzz::make_op(write, width, repeat), tick, high, offset, value};
    put(bytes, bytes.size(), r);
    return *this;
  }
  Records& out(uint8_t target, int32_t offset, uint64_t value, unsigned width = iovmm::fuzz::kW1) {
    return add(target, true, width, offset, value);
  }
  Records& in(uint8_t target, int32_t offset, unsigned width = iovmm::fuzz::kW1, unsigned repeat = 1) {
    return add(target, false, width, offset, 0, repeat);
  }
  // CONFIG_ADDRESS then CONFIG_DATA, as a guest programs configuration space.
  Records& config_write(unsigned slot, unsigned reg, uint32_t value, unsigned width = iovmm::fuzz::kW4) {
    out(iovmm::fuzz::kPciConfig, 0, iovmm::fuzz::config_address(slot, 0, reg), iovmm::fuzz::kW4);
    return out(iovmm::fuzz::kPciConfig, 4 + int32_t(reg & 3), value, width);
  }
  Records& config_read(unsigned slot, unsigned reg, unsigned width = iovmm::fuzz::kW4) {
    out(iovmm::fuzz::kPciConfig, 0, iovmm::fuzz::config_address(slot, 0, reg), iovmm::fuzz::kW4);
    return in(iovmm::fuzz::kPciConfig, 4 + int32_t(reg & 3), width);
  }
};

void platform_seeds(const fs::path& dir) {
  using namespace iovmm::fuzz;
  const unsigned dev = kTestDeviceSlot;

  Records uart;  // Linux's 8250 probe and set-up, a transmit, loopback, host input and the FIFO
  uart.out(kUart, 3, 0x80).out(kUart, 0, 0x01).out(kUart, 1, 0x00).out(kUart, 3, 0x03).out(kUart, 2, 0xc7)
      .out(kUart, 4, 0x0b).out(kUart, 1, 0x0f).in(kUart, 2).in(kUart, 5).out(kUart, 0, 'h').in(kUart, 2)
      .out(kUart, 4, 0x1b).out(kUart, 0, 'x').in(kUart, 5).in(kUart, 0).in(kUart, 6).out(kUart, 4, 0x0b)
      .add(kHostUartInput, false, kW1, 0, 0x6f6c6c6568, 5).in(kUart, 2).in(kUart, 0, kW1, 8).in(kUart, 5)
      .out(kUart, 7, 0x55).in(kUart, 7).in(kUart, 0, kW2).out(kUart, 6, 0, kW4);
  write(dir, "uart.bin", uart.bytes);

  Records fw;  // signature, file directory, a file, past its end, an unknown key, DMA-less ID
  fw.out(kFwCfg, 0, 0x0000, kW2).in(kFwCfg, 1, kW1, 4).out(kFwCfg, 0, 0x0001, kW2).in(kFwCfg, 1, kW1, 4)
      .out(kFwCfg, 0, 0x0019, kW2).in(kFwCfg, 1, kW1, 8).in(kFwCfg, 1, kW1, 8).out(kFwCfg, 0, 0x0020, kW2)
      .in(kFwCfg, 1, kW1, 8).out(kFwCfg, 0, 0x0015, kW2).in(kFwCfg, 1, kW1, 8).out(kFwCfg, 0, 0x4021, kW2)
      .in(kFwCfg, 0, kW2).out(kFwCfg, 1, 0x12).out(kFwCfg, 0, 0x1234, kW2).in(kFwCfg, 1).in(kFwCfg, 0, kW4);
  write(dir, "fw_cfg.bin", fw.bytes);

  Records pm;  // timer across bit-23 flips, status write-1-to-clear, enables, power button, S5
  pm.in(kAcpiPm, 8, kW4).add(kAcpiPm, false, kW4, 8, 0, 1, 200).add(kAcpiPm, false, kW4, 8, 0, 1, 255)
      .in(kAcpiPm, 0, kW2).out(kAcpiPm, 2, 0x0101, kW2).add(kHostPowerButton, false, kW1, 0).in(kAcpiPm, 0, kW2)
      .out(kAcpiPm, 0, 0xffff, kW2).in(kAcpiPm, 4, kW2).out(kAcpiPm, 4, 0x0001, kW2).in(kAcpiPm, 10, kW1)
      .in(kAcpiPm, 0, kW4).out(kAcpiPm, 5, 0x20).out(kAcpiPm, 4, 0x2000 | (0 << 10), kW2);
  write(dir, "acpi_pm.bin", pm.bytes);

  Records pci;  // enumerate, size every BAR, move them (onto each other and onto fixed devices), use them
  pci.config_read(0, 0).config_read(dev, 0).config_read(dev, 8).config_read(dev, 0x34, kW1).config_read(dev, 0x40)
      .config_read(1, 0);
  for (unsigned bar = 0; bar < 6; ++bar) {
    pci.config_read(dev, 0x10 + 4 * bar).config_write(dev, 0x10 + 4 * bar, 0xffffffff)
        .config_read(dev, 0x10 + 4 * bar);
  }
  pci.config_write(dev, 0x10, 0xd001).config_write(dev, 0x14, 0xfe000000).config_write(dev, 0x18, 0xfd000000)
      .config_write(dev, 0x1c, 0x1).config_write(dev, 0x20, 0xfe001000).config_write(dev, 0x04, 0x0007, kW2)
      .out(kBarIo, 0, 0x11223344, kW4).in(kBarIo, 0, kW4).out(kBarMem32, 0x10, 0xdeadbeefcafe, kW8)
      .in(kBarMem32, 0x10, kW8).in(kBarMem64, 0x3ffc, kW4).in(kBarMem64, 0x3ffc, kW8).in(kBarSmall, 12, kW4)
      .config_write(dev, 0x14, 0xfe001000)  // onto BAR4: refused
      .in(kBarMem32, 0, kW4).config_write(dev, 0x10, 0x3f9)  // I/O BAR over COM1: refused
      .in(kBarIo, 0, kW1).config_write(dev, 0x10, 0xc001).config_write(dev, 0x04, 0x0000, kW2)
      .in(kBarMem64, 0, kW4).config_write(dev, 0x04, 0x0003, kW2).config_write(dev, 0x1c, 0x00000001)
      .config_write(dev, 0x48, 0xffffffff).config_read(dev, 0x48).config_write(dev, 0x06, 0xffff, kW2)
      .out(kPciConfig, 1, 0x06).out(kPciConfig, 1, 0x02).in(kPciConfig, 0, kW4).in(kPciConfig, 6, kW2);
  write(dir, "pci.bin", pci.bytes);

  Records odd;  // bad widths, accesses crossing window ends, unmapped ports and memory, debug-exit
  odd.in(kUart, 6, kW4).in(kUart, 7, kW2).in(kUart, -1, kW2).in(kUart, 0, kW0).in(kUart, 0, kW3)
      .in(kFwCfg, 0, kW16).add(kRawPio, false, kW4, 0xffff).add(kRawPio, false, kW1, 0x10000)
      .add(kRawMmio, false, kW8, int32_t(0xfebffffc)).add(kRawMmio, true, kW4, 0x1000, 0, 1, 0, 0xff)
      .add(kRawMmio, false, kW8, -4, 0, 1, 0, 0xff).out(kDebugExit, 0, 0x31, kW4).out(kDebugExit, 2, 0x1, kW4)
      .in(kDebugExit, 0, kW4).out(kPciConfig, 4, 0xffffffff, kW4).in(kBarSmall, 14, kW4);
  write(dir, "odd.bin", odd.bytes);
}

// ---- guest_memory: 16-byte records (op, anchor, fill, reserved, delta, len); see fuzz_guest_memory.cpp ----

void memory_seeds(const fs::path& dir) {
  Bytes b;
  auto rec = [&](uint8_t op, uint8_t anchor, int32_t delta, uint64_t len) {
    put(b, b.size(), op);
    put(b, b.size(), anchor);
    put(b, b.size(), uint8_t(0x11 * (b.size() / 16 + 1)));
    put(b, b.size(), uint8_t(0));
    put(b, b.size(), delta);
    put(b, b.size(), len);
  };
  rec(1, 0, 0x1000, 64);           // write low RAM
  rec(0, 0, 0x1000, 64);           // read it back
  rec(1, 4, -32, 64);              // across the adjacent regions at 0x110000
  rec(0, 3, 0, 0x20000);           // 128 KiB from 0x100000: both adjacent regions, exactly
  rec(0, 1, 0xff0, 0x20);          // into the VGA hole
  rec(3, 4, -8, 16);               // span() across two regions: refused
  rec(3, 6, 0, 16);                // span() above 4 GiB
  rec(1, 8, 0xff8, 8);             // the last bytes of the top region
  rec(0x80, 8, 0, ~uint64_t{0});   // a length that wraps the address space
  rec(0x82, 10, 0, 2);             // contains() at 2^64-1
  rec(0x80, 0, 0, 0x1000000000);   // far beyond RAM
  rec(2, 2, 0, 0);                 // empty access in the hole
  write(dir, "mixed.bin", b);
}


// ---- register_dispatch: a header (flags, testdev path, vga path, override counts, overrides), then 16-byte records
// (op, target, width, extra, offset, value); the layout is fuzz_register_dispatch.cpp's (Flags, Record, Kind) ----

void register_dispatch_seeds(const fs::path& dir) {
  enum : uint8_t { kRead, kWrite, kSelect, kPortWrite, kBurst, kCountRead, kDeliver, kConfig, kConfigRead, kDecode,
                   kBarMove, kDrain, kRebind, kHostToggle, kString };
  constexpr uint8_t kHypercall = 0x10, kEventfdsFirst = 0x20, kRaw = 0x40;  // op bits
  enum : uint8_t { kTdMmio, kTdPio, kVga, kPciPorts, kHypercallPort, kRawPio, kRawMmio };
  // Path indices: 1 exit, 2 coalesced, 3 ioeventfd, 4 ioregionfd, 5 hypercall, 6 fastpath, 7 partial.
  // Testdev names: 0 test, 4 count, 6 port_no_eventfd, 9 mmio. Flags: bit 0 any length, bits 1-3 ring slots index.
  struct Input {
    Bytes bytes;
    Input& rec(uint8_t op, uint8_t target, uint8_t width, uint8_t extra, int32_t offset, uint64_t value) {
      put(bytes, bytes.size(), op);
      put(bytes, bytes.size(), target);
      put(bytes, bytes.size(), width);
      put(bytes, bytes.size(), extra);
      put(bytes, bytes.size(), offset);
      put(bytes, bytes.size(), value);
      return *this;
    }
  };
  // A 4-slot ring; testdev dispatch=coalesced,dispatch.count=fastpath; vga dispatch=coalesced. The datamatch test's
  // writes are queued, signalled (ioeventfds offered first) and carried by hypercalls; `count` is read by the
  // fastpath and under the lock; the BARs move, stop decoding while the doorbell host leaves and comes back.
  Input bars{{3 << 1, 2, 2, 0x01, 4, 6}};
  bars.rec(kSelect, kTdMmio, 0, 0, 0, 2)
      .rec(kPortWrite, 0, 0, 0, 0, 0).rec(kPortWrite | kEventfdsFirst, 0, 0, 0, 0, 0)
      .rec(kPortWrite | kHypercall, 0, 0, 0, 0, 0).rec(kBurst | kEventfdsFirst, 0, 0, 0, 0, 4)
      .rec(kCountRead, kTdMmio, 0, 0, 0, 0).rec(kCountRead | kHypercall, kTdPio, 0, 0, 0, 0)
      .rec(kPortWrite, 0, 0, 0, 0, 0).rec(kPortWrite, 0, 0, 0, 0, 0).rec(kPortWrite, 0, 0, 0, 0, 0)
      .rec(kPortWrite, 0, 0, 0, 0, 0).rec(kCountRead, kTdMmio, 0, 0, 0, 0).rec(kDrain, 0, 0, 0, 0, 0)
      .rec(kSelect, kTdPio, 0, 0, 0, 1).rec(kPortWrite | kEventfdsFirst, 0, 0, 1, 0, 0x33)
      .rec(kWrite, kVga, 3, 0, 0x100, 0x1122334455667788).rec(kRead, kVga, 2, 0, 0x102, 0)
      .rec(kBarMove, kTdMmio, 0, 0, 0, 0xA0000).rec(kCountRead, kTdMmio, 0, 0, 0, 0)
      .rec(kBarMove, kTdMmio, 0, 0, 0, 0xFEBFF000).rec(kBarMove, kTdPio, 0, 0, 0, 0xD000)
      .rec(kPortWrite | kEventfdsFirst, 0, 0, 0, 0, 0).rec(kDecode, 0, 0, 0, 0, 0).rec(kHostToggle, 0, 0, 0, 0, 0)
      .rec(kHostToggle, 0, 0, 0, 0, 0).rec(kDecode, 0, 0, 0, 0, 3).rec(kPortWrite | kEventfdsFirst, 0, 0, 0, 0, 0)
      .rec(kConfigRead, 0, 2, 0, 0x10, 0).rec(kRebind, 0, 1, 7, 0, 0x0604).rec(kPortWrite, 0, 0, 0, 0, 0)
      .rec(kRead, kTdMmio, 0, 0, 0x10, 0).rec(kDeliver, 0, 0, 0, 0, 0).rec(kConfig, 0, 1, 0, 4, 1);
  write(dir, "bars.bin", bars.bytes);

  // The host has KVM_CAP_IOEVENTFD_ANY_LENGTH; testdev dispatch=ioregionfd (no doorbell host: a carrier takes every
  // access), then rebound to dispatch=partial and given the host: the any-length wildcard doorbell takes writes of
  // any width. A 2-slot ring.
  Input carried{{0x01 | (1 << 1), 4, 0, 0x00}};
  carried.rec(kSelect, kTdMmio, 0, 0, 0, 1).rec(kPortWrite, 0, 2, 0x04, 0, 0).rec(kCountRead, kTdPio, 0, 0, 0, 0)
      .rec(kRebind, 0, 0, 7, 0, 0).rec(kHostToggle, 0, 0, 0, 0, 0).rec(kSelect, kTdMmio, 0, 0, 0, 1)
      .rec(kPortWrite, 0, 2, 0x05, 0, 0x77).rec(kPortWrite, 0, 3, 0x05, 0, 0x1234).rec(kBurst, 0, 0, 1, 0, 0x1000)
      .rec(kCountRead, kTdMmio, 0, 0, 0, 0).rec(kWrite, kVga, 0, 0, 0, 0xaa).rec(kWrite, kVga, 0, 0, 1, 0xbb)
      .rec(kWrite, kVga, 0, 0, 2, 0xcc).rec(kRead, kVga, 2, 0, 0, 0).rec(kRebind, 1, 0, 2, 0, 0)
      .rec(kWrite, kVga, 1, 0, 4, 0xddee).rec(kWrite, kVga, 1, 0, 6, 0xff00).rec(kRead, kVga, 3, 0, 0, 0);
  write(dir, "carried.bin", carried.bytes);

  // The hypercall port: its signature, calls to the VGA and the testdev, a port above 0xffff, corrupted flags,
  // an `outb` with the status of the last call still in rcx, and a call that writes the port itself (skipped: it
  // recurses, see fuzz_register_dispatch.cpp).
  Input hypercalls{{5 << 1, 2, 2, 0x00}};
  hypercalls.rec(kRead, kHypercallPort, 2, 0, 0, 0).rec(kRead, kHypercallPort, 0, 0, 2, 0)
      .rec(kWrite | kHypercall, kVga, 2, 0, 0x20, 0xdeadbeef).rec(kRead | kHypercall, kVga, 1, 0, 0x22, 0)
      .rec(kSelect | kHypercall, kTdPio, 0, 0, 0, 2).rec(kPortWrite | kHypercall, 0, 0, 0, 0, 0)
      .rec(kCountRead | kHypercall, kTdMmio, 0, 0, 0, 0).rec(kRead | kHypercall | kRaw, kRawPio, 0, 0, 0x10000, 0)
      .rec(kRead | kHypercall, kPciPorts, 2, 0x8a, 0, 0).rec(kWrite, kHypercallPort, 0, 0, 0, 0)
      .rec(kWrite | kHypercall, kHypercallPort, 0, 0, 0, 0).rec(kWrite | kHypercall, kHypercallPort, 0, 0, 1, 0);
  write(dir, "hypercalls.bin", hypercalls.bytes);

  // String I/O (rep outs/ins) at the testdev's port BAR, the PCI ports and the hypercall port; the testdev carried by
  // ioregionfd after a rebind.
  Input strings{{1 << 1, 0, 0, 0x00}};
  strings.rec(kSelect, kTdPio, 0, 0, 0, 0).rec(kString, 0, 0, 6, 0x83, 0xfa).rec(kString, 0, 2, 3, 0x0c, 0)
      .rec(kString, 2, 0, 1, 0, 0).rec(kString, 1, 2, 5, 0, 0).rec(kString, 3, 3, 2, 0xc000, 0)
      .rec(kRebind, 0, 0, 4, 0, 0).rec(kString, 0, 0, 8, 0x83, 0xfa).rec(kString, 0, 1, 1, 0x0c, 0);
  write(dir, "strings.bin", strings.bytes);

  // Refused choices (dispatch=ioeventfd: no doorbell register; dispatch.vram=fastpath), then odd accesses.
  Input refused{{0x00, 3, 1, 0x04, 0, 6}};
  refused.rec(kRead | kRaw, kRawPio, 0x80 | (3 << 3), 0, 0xCF8, 0).rec(kWrite | kHypercall, kTdPio, 0, 0xbf, 0, 0)
      .rec(kRead | kHypercall, kRawMmio, 3, 0x89, 0x10000, 0).rec(kWrite, kVga, 0x80 | (15 << 3), 0, 0, 0)
      .rec(kWrite, kVga, 7, 0, 0x1fffe, 0).rec(kRead, kTdPio, 3, 0, 0xfc, 0).rec(kWrite, kRawMmio, 0, 0, -1, 0);
  write(dir, "refused.bin", refused.bytes);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR   (writes DIR/<target>/ seed files)\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  kernel_seeds(dir / "kernel_loader");
  platform_seeds(dir / "platform_registers");
  memory_seeds(dir / "guest_memory");
  register_dispatch_seeds(dir / "register_dispatch");
  return 0;
}
