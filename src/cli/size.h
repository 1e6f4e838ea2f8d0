#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace iovmm::cli {

// QEMU-style sizes: a plain number is MiB; suffixes K, M, G, T (binary, case-insensitive, optional trailing B).
// On failure `why` (if given) says whether it is not a size or out of range.
[[nodiscard]] std::optional<uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

}  // namespace iovmm::cli
