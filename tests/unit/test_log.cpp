#include <gtest/gtest.h>

#include "common/log.h"

namespace iovmm::log {
namespace {

TEST(RateLimit, PrintsABurstThenSuppressesAndCounts) {
  RateLimit limit;
  uint64_t suppressed = 0;
  int printed = 0;
  for (int i = 0; i < 1000; ++i) printed += limit.allow(suppressed) ? 1 : 0;
  EXPECT_EQ(printed, static_cast<int>(RateLimit::kBurst));
  EXPECT_EQ(limit.total(), 1000u);
}

}  // namespace
}  // namespace iovmm::log
