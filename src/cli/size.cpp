#include "cli/size.h"

#include <cctype>
#include <charconv>

namespace iovmm::cli {

std::optional<uint64_t> parse_size(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<uint64_t> {
    if (why) *why = reason;
    return std::nullopt;
  };
  constexpr const char* kNotASize = "not a size (try 128M or 1G)";
  constexpr const char* kOutOfRange = "out of range (more than 16 EiB)";
  uint64_t number = 0;
  auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (rest == text.data()) return fail(kNotASize);
  if (ec == std::errc::result_out_of_range) return fail(kOutOfRange);
  if (ec != std::errc()) return fail(kNotASize);
  std::string_view suffix(rest, static_cast<size_t>(text.data() + text.size() - rest));
  if (!suffix.empty() && (suffix.back() == 'b' || suffix.back() == 'B') && suffix.size() == 2) suffix.remove_suffix(1);
  unsigned shift = 20;
  if (suffix.size() == 1) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return fail(kNotASize);
    }
  } else if (!suffix.empty()) {
    return fail(kNotASize);
  }
  if (number > (~0ull >> shift)) return fail(kOutOfRange);
  return number << shift;
}

}  // namespace iovmm::cli
