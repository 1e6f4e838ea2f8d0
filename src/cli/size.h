#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace iovmm::cli {

// QEMU-style sizes: a plain number is MiB; suffixes K, M, G, T (binary, case-insensitive, optional trailing B).
[[nodiscard]] std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace iovmm::cli
