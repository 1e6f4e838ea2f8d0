// QEMU's firmware configuration device (fw_cfg), legacy port I/O interface only, as on QEMU's x86 machines: a
// 16-bit selector at 0x510 and a byte-wide data port at 0x511. Guests (firmware, Linux's qemu_fw_cfg driver, our
// bench guests) read machine facts from it: signature, CPU count, RAM size, command line, named files.
//
// Models: selector writes (which reset the data offset), auto-incrementing byte reads that return 0 past an item's
// end or for an unknown selector, the signature and ID items, the file directory (key 0x0019, files from 0x0020,
// listed sorted by name as QEMU lists them), and QEMU's "combined" port decoding: any byte read is a data read, a
// 16-bit write at the base selects. Data writes are ignored, as in QEMU >= 2.4.
// Leaves out: the DMA interface (the ID item says so), the MMIO variants, the write channel, and QEMU's renumbering
// of file keys into name order (our keys are assigned in add_file() order so the key returned stays valid; the
// directory still lists names in order and names each key).
// Spec: QEMU docs/specs/fw_cfg.rst (formerly fw_cfg.txt).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/device.h"

namespace iovmm::devices {

namespace fw_cfg_key {
constexpr uint16_t kSignature = 0x0000;
constexpr uint16_t kId = 0x0001;
constexpr uint16_t kUuid = 0x0002;
constexpr uint16_t kRamSize = 0x0003;
constexpr uint16_t kNoGraphic = 0x0004;
constexpr uint16_t kNbCpus = 0x0005;
constexpr uint16_t kMachineId = 0x0006;
constexpr uint16_t kKernelAddr = 0x0007;
constexpr uint16_t kKernelSize = 0x0008;
constexpr uint16_t kInitrdAddr = 0x000a;
constexpr uint16_t kInitrdSize = 0x000b;
constexpr uint16_t kBootDevice = 0x000c;
constexpr uint16_t kNumaData = 0x000d;
constexpr uint16_t kBootMenu = 0x000e;
constexpr uint16_t kMaxCpus = 0x000f;
constexpr uint16_t kKernelEntry = 0x0010;
constexpr uint16_t kKernelData = 0x0011;
constexpr uint16_t kInitrdData = 0x0012;
constexpr uint16_t kCmdlineAddr = 0x0013;
constexpr uint16_t kCmdlineSize = 0x0014;
constexpr uint16_t kCmdlineData = 0x0015;
constexpr uint16_t kSetupAddr = 0x0016;
constexpr uint16_t kSetupSize = 0x0017;
constexpr uint16_t kSetupData = 0x0018;
constexpr uint16_t kFileDir = 0x0019;
constexpr uint16_t kFileFirst = 0x0020;
// Selector bits that do not name the item: the write channel (unsupported) is ignored on selection.
constexpr uint16_t kWriteChannel = 0x4000;
constexpr uint16_t kArchLocal = 0x8000;
}  // namespace fw_cfg_key

class FwCfg final : public io::Device {
 public:
  static constexpr uint16_t kIoBase = 0x510;
  static constexpr uint64_t kRegionSize = 2;
  static constexpr size_t kMaxFileName = 56;  // including the terminating NUL
  static constexpr uint32_t kIdTraditional = 1;

  explicit FwCfg(std::string name = "fw_cfg");

  // Set-up API (any thread; takes the device mutex). Integers are stored little-endian, as QEMU stores them.
  // Adding an existing key replaces its contents. Keys in the file range or the directory key throw Error.
  void add_bytes(uint16_t key, std::vector<uint8_t> bytes);
  void add_u16(uint16_t key, uint16_t value);
  void add_u32(uint16_t key, uint32_t value);
  void add_u64(uint16_t key, uint64_t value);
  void add_string(uint16_t key, std::string_view text);  // stored with its terminating NUL
  // Adds a named file and returns its selector key. Throws Error on an empty, too long or duplicate name, or when
  // the file key space is exhausted.
  uint16_t add_file(std::string_view name, std::vector<uint8_t> bytes);
  // CMDLINE_ADDR, CMDLINE_SIZE (length including the NUL) and CMDLINE_DATA (with the NUL), as QEMU sets them for
  // -kernel/-append.
  void set_kernel_cmdline(uint32_t load_address, std::string_view cmdline);

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  struct File {
    std::string name;
    uint16_t key;
  };
  void put_item(uint16_t key, std::vector<uint8_t> bytes);  // mutex held
  void rebuild_directory();                                 // mutex held
  [[nodiscard]] uint8_t read_data_byte();

  std::map<uint16_t, std::vector<uint8_t>> items_;
  std::vector<File> files_;
  std::optional<uint16_t> selected_;  // nullopt: unknown selector, reads return 0
  size_t data_offset_ = 0;
};

}  // namespace iovmm::devices
