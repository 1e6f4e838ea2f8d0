#include "cli/size.h"

#include <cctype>
#include <charconv>

namespace iovmm::cli {

std::optional<uint64_t> parse_size(std::string_view text) {
  uint64_t number = 0;
  auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || rest == text.data()) return std::nullopt;
  std::string_view suffix(rest, static_cast<size_t>(text.data() + text.size() - rest));
  if (!suffix.empty() && (suffix.back() == 'b' || suffix.back() == 'B') && suffix.size() == 2) suffix.remove_suffix(1);
  unsigned shift = 20;
  if (suffix.size() == 1) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return std::nullopt;
    }
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (number > (~0ull >> shift)) return std::nullopt;
  return number << shift;
}

}  // namespace iovmm::cli
