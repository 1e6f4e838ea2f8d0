#include "devices/fw_cfg.h"

#include <fmt/core.h>

#include <algorithm>
#include <mutex>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices {
namespace {
// Selecting an item only resets the data offset (a latch); each data read advances it. The 16-bit selector spans
// the data port's byte, as QEMU decodes the pair: data comes first so that byte accesses at +1 are named by it.
constexpr io::Register kFwCfgRegisters[] = {
    {"data", 1, 1, io::Access::rw, io::Effect::read_sensitive},
    {"selector", 0, 2, io::Access::wo, io::Effect::latch},
};
constexpr const io::Register& kSelector = kFwCfgRegisters[1];
constexpr io::RegisterBlock kFwCfgBlocks[] = {{0, "port", kFwCfgRegisters}};

template <typename T>
std::vector<uint8_t> little_endian(T value) {
  std::vector<uint8_t> bytes(sizeof(T));
  for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
  return bytes;
}

void append_big_endian(std::vector<uint8_t>& out, uint64_t value, unsigned width) {
  for (unsigned i = width; i-- > 0;) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// The directory entry, as the spec lays it out: 64 bytes, big-endian fields.
constexpr size_t kDirEntrySize = 4 + 2 + 2 + FwCfg::kMaxFileName;
static_assert(kDirEntrySize == 64);

// Without the arch-local bit, keys up to 0x3fff exist; files take 0x0020 onward.
constexpr uint16_t kLastFileKey = 0x3fff;

}  // namespace

FwCfg::FwCfg(std::string name) : io::Device(std::move(name)) {
  put_item(fw_cfg_key::kSignature, {'Q', 'E', 'M', 'U'});
  put_item(fw_cfg_key::kId, little_endian<uint32_t>(kIdTraditional));
  rebuild_directory();
}

void FwCfg::put_item(uint16_t key, std::vector<uint8_t> bytes) { items_[key] = std::move(bytes); }

void FwCfg::add_bytes(uint16_t key, std::vector<uint8_t> bytes) {
  uint16_t item = key & static_cast<uint16_t>(~fw_cfg_key::kWriteChannel);
  uint16_t index = item & static_cast<uint16_t>(~fw_cfg_key::kArchLocal);
  if (index == fw_cfg_key::kFileDir || index >= fw_cfg_key::kFileFirst) {
    throw Error(fmt::format("fw_cfg: key {:#06x} is reserved for the file directory; use add_file", key));
  }
  std::lock_guard lock(mutex());
  put_item(item, std::move(bytes));
}

void FwCfg::add_u16(uint16_t key, uint16_t value) { add_bytes(key, little_endian(value)); }
void FwCfg::add_u32(uint16_t key, uint32_t value) { add_bytes(key, little_endian(value)); }
void FwCfg::add_u64(uint16_t key, uint64_t value) { add_bytes(key, little_endian(value)); }

void FwCfg::add_string(uint16_t key, std::string_view text) {
  std::vector<uint8_t> bytes(text.begin(), text.end());
  bytes.push_back(0);
  add_bytes(key, std::move(bytes));
}

void FwCfg::set_kernel_cmdline(uint32_t load_address, std::string_view cmdline) {
  add_u32(fw_cfg_key::kCmdlineAddr, load_address);
  add_u32(fw_cfg_key::kCmdlineSize, static_cast<uint32_t>(cmdline.size() + 1));
  add_string(fw_cfg_key::kCmdlineData, cmdline);
}

uint16_t FwCfg::add_file(std::string_view name, std::vector<uint8_t> bytes) {
  if (name.empty() || name.size() >= kMaxFileName || name.find('\0') != std::string_view::npos) {
    throw Error(fmt::format("fw_cfg: file name \"{}\" must be 1 to {} characters", name, kMaxFileName - 1));
  }
  if (bytes.size() > UINT32_MAX) throw Error(fmt::format("fw_cfg: file \"{}\" is larger than 4 GiB", name));
  std::lock_guard lock(mutex());
  for (const auto& file : files_) {
    if (file.name == name) throw Error(fmt::format("fw_cfg: file \"{}\" added twice", name));
  }
  if (files_.size() > size_t{kLastFileKey - fw_cfg_key::kFileFirst}) throw Error("fw_cfg: too many files");
  auto key = static_cast<uint16_t>(fw_cfg_key::kFileFirst + files_.size());
  files_.push_back(File{std::string(name), key});
  put_item(key, std::move(bytes));
  rebuild_directory();
  return key;
}

void FwCfg::rebuild_directory() {
  std::vector<const File*> sorted;
  for (const auto& file : files_) sorted.push_back(&file);
  std::sort(sorted.begin(), sorted.end(), [](const File* a, const File* b) { return a->name < b->name; });

  std::vector<uint8_t> directory;
  directory.reserve(4 + sorted.size() * kDirEntrySize);
  append_big_endian(directory, sorted.size(), 4);
  for (const File* file : sorted) {
    append_big_endian(directory, items_.at(file->key).size(), 4);
    append_big_endian(directory, file->key, 2);
    append_big_endian(directory, 0, 2);  // reserved
    size_t name_start = directory.size();
    directory.insert(directory.end(), file->name.begin(), file->name.end());
    directory.resize(name_start + kMaxFileName, 0);  // NUL-terminated and padded
  }
  put_item(fw_cfg_key::kFileDir, std::move(directory));
}

uint8_t FwCfg::read_data_byte() {
  if (!selected_) return 0;
  auto it = items_.find(*selected_);
  if (it == items_.end() || data_offset_ >= it->second.size()) return 0;  // past the end: 0, offset stays
  return it->second[data_offset_++];
}

uint64_t FwCfg::read(unsigned region, uint64_t, unsigned size) {
  // QEMU decodes the two ports together: every byte read is a data read, whichever of the two ports it hits.
  if (region != 0 || size != 1) {
    IOVMM_LOG_RATELIMITED("{}: guest read of {} bytes: only byte reads of the data port exist", name(), size);
    return ~0ull;
  }
  return read_data_byte();
}

void FwCfg::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0) return;
  if (offset == kSelector.offset && size == kSelector.width) {
    uint16_t key = static_cast<uint16_t>(value) & static_cast<uint16_t>(~fw_cfg_key::kWriteChannel);
    data_offset_ = 0;
    if (items_.contains(key)) {
      selected_ = key;
    } else {
      selected_.reset();
    }
    return;
  }
  // Byte writes are data writes: QEMU >= 2.4 ignores them (the write channel is DMA-only).
  IOVMM_LOG_RATELIMITED("{}: guest wrote {:#x} ({} bytes) at offset {}: data writes are not supported, ignored",
                        name(), value, size, offset);
}

std::span<const io::RegisterBlock> FwCfg::register_blocks() const { return kFwCfgBlocks; }

}  // namespace iovmm::devices
