#include "io/bus.h"

#include <cstring>

#include <fmt/core.h>

#include <algorithm>
#include <bit>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::io {

AccessCounts::AccessCounts(std::span<const Register> registers)
    : map_(registers), flat_(std::make_unique<std::atomic<uint64_t>[]>(slot(static_cast<uint32_t>(registers.size()),
                                                                              Direction::read, Path::exit, 0))) {}

void AccessCounts::add(uint32_t row, uint64_t offset, unsigned size, Direction direction, Path path, uint64_t n) {
  if (row != RegisterMap::kNone && offset == map_.registers()[row].offset && valid_access_size(size)) {
    flat_[slot(row, direction, path, static_cast<unsigned>(std::countr_zero(size)))].fetch_add(
        n, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(other_mutex_);
  other_[Key{offset, size, direction, path}] += n;
}

std::map<AccessCounts::Key, uint64_t> AccessCounts::snapshot() const {
  std::map<Key, uint64_t> out;
  {
    std::lock_guard lock(other_mutex_);
    out = other_;
  }
  const auto registers = map_.registers();
  for (uint32_t row = 0; row < registers.size(); ++row) {
    for (auto direction : {Direction::read, Direction::write}) {
      for (unsigned p = 0; p < kPathCount; ++p) {
        for (unsigned w = 0; w < kWidths; ++w) {
          uint64_t n = flat_[slot(row, direction, static_cast<Path>(p), w)].load(std::memory_order_relaxed);
          if (n) out[Key{registers[row].offset, 1u << w, direction, static_cast<Path>(p)}] += n;
        }
      }
    }
  }
  return out;
}

Bus::Bus(Space space) : space_(space), table_(std::make_shared<const Table>()) {}

void Bus::publish(Table table) {
  std::sort(table.begin(), table.end(), [](const Window& a, const Window& b) { return a.base < b.base; });
  table_.store(std::make_shared<const Table>(std::move(table)), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_release);
}

void Bus::notify(const Window* removed, const Window* added) {
  for (const auto& listener : listeners_) listener(removed, added);
}

void Bus::add_listener(Listener listener) {
  std::lock_guard lock(writer_mutex_);
  listeners_.push_back(std::move(listener));
}

void Bus::check_free(const Table& table, const Window& window) const {
  if (window.size == 0 || window.base + window.size < window.base) {
    throw Error(fmt::format("{} bus: {} window {:#x}+{:#x} is empty or wraps", to_string(space_), window.label,
                            window.base, window.size));
  }
  for (const auto& w : table) {
    if (window.base < w.base + w.size && w.base < window.base + window.size) {
      throw Error(fmt::format("{} bus: {} at {:#x}+{:#x} overlaps {} at {:#x}+{:#x}", to_string(space_),
                              window.label, window.base, window.size, w.label, w.base, w.size));
    }
  }
}

void Bus::map(Window window) {
  if (!window.device) throw Error("bus: window without a device");
  if (window.label.empty()) window.label = window.device->name();
  if (!window.counts) window.counts = std::make_shared<AccessCounts>(window.device->registers(window.region));
  std::lock_guard lock(writer_mutex_);
  auto bound = routes_.find({window.device.get(), window.region});
  if (bound != routes_.end()) window.route = bound->second;
  Table table = *table_.load(std::memory_order_acquire);
  check_free(table, window);
  table.push_back(window);
  publish(std::move(table));
  notify(nullptr, &window);
}

bool Bus::unmap(const Device& device, unsigned region) {
  std::lock_guard lock(writer_mutex_);
  Table table = *table_.load(std::memory_order_acquire);
  auto it = std::find_if(table.begin(), table.end(),
                         [&](const Window& w) { return w.device.get() == &device && w.region == region; });
  if (it == table.end()) return false;
  Window removed = *it;
  table.erase(it);
  publish(std::move(table));
  notify(&removed, nullptr);
  return true;
}

void Bus::move(const Device& device, unsigned region, uint64_t new_base) {
  std::lock_guard lock(writer_mutex_);
  Table table = *table_.load(std::memory_order_acquire);
  auto it = std::find_if(table.begin(), table.end(),
                         [&](const Window& w) { return w.device.get() == &device && w.region == region; });
  if (it == table.end()) {
    throw Error(fmt::format("{} bus: {} region {} is not mapped", to_string(space_), device.name(), region));
  }
  Window old = *it;
  Window moved = *it;
  moved.base = new_base;
  table.erase(it);
  check_free(table, moved);  // on failure the window stays where it was
  table.push_back(moved);
  publish(std::move(table));
  notify(&old, &moved);
}

void Bus::bind(const Device& device, unsigned region, std::shared_ptr<const WindowRoute> route) {
  std::lock_guard lock(writer_mutex_);
  routes_[{&device, region}] = route;
  Table table = *table_.load(std::memory_order_acquire);
  for (auto& w : table) {
    if (w.device.get() != &device || w.region != region) continue;
    Window old = w;
    w.route = route;
    Window rebound = w;
    publish(table);
    notify(&old, &rebound);
    return;
  }
}

std::optional<Window> Bus::find_window(const Device& device, unsigned region) const {
  auto table = table_.load(std::memory_order_acquire);
  for (const auto& w : *table) {
    if (w.device.get() == &device && w.region == region) return w;
  }
  return std::nullopt;
}

Bus::Hit Bus::lookup(const Table& table, uint64_t addr, unsigned size) const {
  if (!valid_access_size(size)) return {nullptr, AccessResult::bad_size};
  auto it = std::upper_bound(table.begin(), table.end(), addr, [](uint64_t a, const Window& w) { return a < w.base; });
  if (it == table.begin()) return {nullptr, AccessResult::unmapped};
  --it;
  uint64_t offset = addr - it->base;
  if (offset >= it->size) return {nullptr, AccessResult::unmapped};
  if (size > it->size - offset) return {nullptr, AccessResult::crosses_end};
  return {&*it, AccessResult::ok};
}

void Bus::note_bad_access(AccessResult result, Direction direction, uint64_t addr, unsigned size, uint64_t value) {
  (direction == Direction::read ? unmapped_reads_ : unmapped_writes_).fetch_add(1, std::memory_order_relaxed);
  const char* why = result == AccessResult::crosses_end ? "runs past the end of a device window"
                    : result == AccessResult::bad_size  ? "has an invalid width"
                                                        : "hits no device";
  if (direction == Direction::read) {
    IOVMM_LOG_RATELIMITED("guest {} read of {} bytes at {:#x} {}: returning all-ones", to_string(space_), size, addr,
                          why);
  } else {
    IOVMM_LOG_RATELIMITED("guest {} write of {} bytes ({:#x}) at {:#x} {}: ignored", to_string(space_), size, value,
                          addr, why);
  }
}

AccessResult Bus::read_in(const Table& table, uint64_t addr, unsigned size, uint64_t& value, Path via) {
  Hit hit = lookup(table, addr, size);
  value = valid_access_size(size) ? size_mask(size) : ~0ull;
  if (hit.result != AccessResult::ok) {
    note_bad_access(hit.result, Direction::read, addr, size, 0);
    return hit.result;
  }
  const Window& window = *hit.window;
  uint64_t offset = addr - window.base;
  uint32_t row = window.counts->row(offset, size);
  Path path = via;
  if (window.route) {
    path = window.route->read(window, row, offset, size, via, value);
  } else {
    std::lock_guard lock(window.device->mutex());
    value = window.device->read(window.region, offset, size);
  }
  value &= size_mask(size);
  window.counts->add(row, offset, size, Direction::read, path);
  return AccessResult::ok;
}

void Bus::write_window(const Window& window, uint64_t offset, unsigned size, uint64_t value, Path via) {
  uint32_t row = window.counts->row(offset, size);
  value &= size_mask(size);
  Path path = via;
  if (window.route) {
    path = window.route->write(window, row, offset, size, value, via);
  } else {
    std::lock_guard lock(window.device->mutex());
    window.device->write(window.region, offset, size, value);
  }
  window.counts->add(row, offset, size, Direction::write, path);
}

AccessResult Bus::write_in(const Table& table, uint64_t addr, unsigned size, uint64_t value, Path via) {
  Hit hit = lookup(table, addr, size);
  if (hit.result != AccessResult::ok) {
    note_bad_access(hit.result, Direction::write, addr, size, value);
    return hit.result;
  }
  write_window(*hit.window, addr - hit.window->base, size, value, via);
  return AccessResult::ok;
}

AccessResult Bus::read(uint64_t addr, unsigned size, uint64_t& value, Path via) {
  auto table = table_.load(std::memory_order_acquire);
  return read_in(*table, addr, size, value, via);
}

AccessResult Bus::write(uint64_t addr, unsigned size, uint64_t value, Path via) {
  auto table = table_.load(std::memory_order_acquire);
  return write_in(*table, addr, size, value, via);
}

AccessResult Bus::read(Reader& reader, uint64_t addr, unsigned size, uint64_t& value, Path via) {
  return read_in(reader.table(), addr, size, value, via);
}

AccessResult Bus::write(Reader& reader, uint64_t addr, unsigned size, uint64_t value, Path via) {
  return write_in(reader.table(), addr, size, value, via);
}

AccessResult Bus::transfer_string(Reader& reader, Direction direction, uint64_t addr, unsigned size, uint32_t count,
                                  uint8_t* data) {
  Hit hit = lookup(reader.table(), addr, size);
  if (hit.result != AccessResult::ok) {
    for (uint32_t i = 0; i < count; ++i) note_bad_access(hit.result, direction, addr, size, 0);
    if (direction == Direction::read) std::memset(data, 0xFF, size_t{size} * count);
    return hit.result;
  }
  const Window& window = *hit.window;
  uint64_t offset = addr - window.base;
  Path path = Path::exit;
  if (window.route) {
    path = window.route->transfer_string(window, direction, offset, size, count, data);
  } else {
    std::lock_guard lock(window.device->mutex());
    transfer_elements(*window.device, window.region, direction, offset, size, count, data);
  }
  window.counts->add(RegisterMap::kNone, offset, size * count, direction, path);
  return AccessResult::ok;
}

void transfer_elements(Device& target, unsigned region, Direction direction, uint64_t offset, unsigned size,
                       uint32_t count, uint8_t* data) {
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t* element = data + size_t{i} * size;
    uint64_t value = 0;
    if (direction == Direction::read) {
      value = target.read(region, offset, size);
      std::memcpy(element, &value, size);
    } else {
      std::memcpy(&value, element, size);
      target.write(region, offset, size, value);
    }
  }
}

std::vector<Window> Bus::windows() const { return *table_.load(std::memory_order_acquire); }

}  // namespace iovmm::io
