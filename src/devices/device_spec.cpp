#include "devices/device_spec.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::devices {

DeviceSpec DeviceSpec::parse(std::string_view text) {
  DeviceSpec spec;
  spec.text_ = std::string(text);
  size_t comma = text.find(',');
  spec.type_ = std::string(text.substr(0, comma));
  if (spec.type_.empty()) throw UsageError(fmt::format("--device {}: no device type", text));
  while (comma != std::string_view::npos) {
    size_t next = text.find(',', comma + 1);
    std::string_view item = text.substr(comma + 1, next == std::string_view::npos ? next : next - comma - 1);
    size_t equals = item.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      throw UsageError(fmt::format("--device {}: '{}' is not KEY=VALUE", text, item));
    }
    std::string key(item.substr(0, equals));
    for (const auto& [existing, value] : spec.options_) {
      if (existing == key) throw UsageError(fmt::format("--device {}: '{}' is given twice", text, key));
    }
    spec.options_.emplace_back(std::move(key), std::string(item.substr(equals + 1)));
    comma = next;
  }
  spec.used_.assign(spec.options_.size(), false);
  return spec;
}

void DeviceSpec::add(std::string key, std::string value) {
  for (const auto& [existing, ignored] : options_) {
    if (existing == key) throw UsageError(fmt::format("--device {}: '{}' is given twice", text_, key));
  }
  options_.emplace_back(std::move(key), std::move(value));
  used_.push_back(false);
}

std::optional<std::string> DeviceSpec::take(std::string_view key) const {
  for (size_t i = 0; i < options_.size(); ++i) {
    if (options_[i].first == key) {
      used_[i] = true;
      return options_[i].second;
    }
  }
  return std::nullopt;
}

std::vector<std::string> DeviceSpec::unused_keys() const {
  std::vector<std::string> keys;
  for (size_t i = 0; i < options_.size(); ++i) {
    if (!used_[i]) keys.push_back(options_[i].first);
  }
  return keys;
}

void DeviceSpec::reject_unused(std::string_view known_keys) const {
  auto unused = unused_keys();
  if (!unused.empty()) {
    throw UsageError(fmt::format("--device {}: unknown option '{}' for {} (known: {})", text_, unused.front(), type_,
                                 known_keys));
  }
}

}  // namespace iovmm::devices
