#include "common/process_clock.h"

namespace iovmm {
namespace {
const std::chrono::steady_clock::time_point g_process_start = std::chrono::steady_clock::now();
}

std::chrono::steady_clock::time_point process_start() { return g_process_start; }

}  // namespace iovmm
