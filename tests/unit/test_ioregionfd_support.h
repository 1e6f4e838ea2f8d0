// Shared pieces of the ioregionfd tests: a fake register device, a failure recorder, and where iovmm-device is.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "io/device.h"

namespace iovmm::dispatch::ioregionfd::testing {

// Two windows of plain registers: region 0 (0x100 bytes) and region 1 (0x10 bytes). Reads return what was written,
// little-endian, any width; counts what it saw.
class FakeRegisters : public io::Device {
 public:
  static constexpr uint64_t kRegion0Size = 0x100;
  static constexpr uint64_t kRegion1Size = 0x10;
  FakeRegisters() : io::Device("fake-registers") {}

  uint64_t read(unsigned region, uint64_t offset, unsigned size) override {
    ++reads;
    auto& bytes = region == 0 ? region0_ : region1_;
    if (region > 1 || offset > bytes.size() || size > bytes.size() - offset) return io::size_mask(size);
    uint64_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint64_t{bytes[offset + i]} << (8 * i);
    return value;
  }
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override {
    ++writes;
    auto& bytes = region == 0 ? region0_ : region1_;
    if (region > 1 || offset > bytes.size() || size > bytes.size() - offset) return;
    for (unsigned i = 0; i < size; ++i) bytes[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }

  uint64_t reads = 0;  // guarded by mutex(), which the server holds
  uint64_t writes = 0;

 private:
  std::vector<uint8_t> region0_ = std::vector<uint8_t>(kRegion0Size);
  std::vector<uint8_t> region1_ = std::vector<uint8_t>(kRegion1Size);
};

// Collects on_failure messages.
struct FailureLog {
  std::mutex mutex;
  std::vector<std::string> messages;
  auto handler() {
    return [this](const std::string& message) {
      std::lock_guard lock(mutex);
      messages.push_back(message);
    };
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mutex);
    return messages;
  }
};

// $IOVMM_DEVICE_BINARY, else iovmm-device at the top of the build directory (this binary lives in tests/).
inline std::string device_binary() {
  if (const char* env = std::getenv("IOVMM_DEVICE_BINARY")) return env;
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "iovmm-device").string();
}
inline bool device_binary_exists() { return ::access(device_binary().c_str(), X_OK) == 0; }

}  // namespace iovmm::dispatch::ioregionfd::testing
