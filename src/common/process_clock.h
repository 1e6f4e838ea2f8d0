// When this process started, as seen by a static initialiser that runs before main(): the zero point for "VMM start
// to the guest's first instruction".
#pragma once

#include <chrono>

namespace iovmm {

[[nodiscard]] std::chrono::steady_clock::time_point process_start();

}  // namespace iovmm
