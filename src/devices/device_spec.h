// --device TYPE[,KEY=VALUE...]: the syntax users know from QEMU. Parsed once, here, for the machine and for the
// iovmm-device process, which builds the same device from the same text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iovmm::devices {

class DeviceSpec {
 public:
  // Throws UsageError naming the spec when it is malformed (empty type, key without '=', empty key, repeated key).
  static DeviceSpec parse(std::string_view text);

  [[nodiscard]] const std::string& type() const { return type_; }
  [[nodiscard]] const std::string& text() const { return text_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& options() const { return options_; }

  // Adds KEY=VALUE as if it had been given, leaving text() as the user wrote it (messages quote that): a name the
  // machine chose for a device without id=.
  void add(std::string key, std::string value);

  // The value of `key`, marking it used.
  [[nodiscard]] std::optional<std::string> take(std::string_view key) const;
  // Options nobody took: the caller reports them as unknown.
  [[nodiscard]] std::vector<std::string> unused_keys() const;
  // Throws UsageError("--device TEXT: unknown option 'KEY' ...") for the first unused key.
  void reject_unused(std::string_view known_keys) const;

 private:
  std::string text_;
  std::string type_;
  std::vector<std::pair<std::string, std::string>> options_;
  mutable std::vector<bool> used_;
};

}  // namespace iovmm::devices
