// Tests that need /dev/kvm: under CI=true a missing KVM is a failure, never a silent skip.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#define IOVMM_REQUIRE_KVM()                                                                  \
  do {                                                                                       \
    if (::access("/dev/kvm", R_OK | W_OK) != 0) {                                            \
      const char* ci = std::getenv("CI");                                                    \
      if (ci && std::strcmp(ci, "true") == 0) FAIL() << "/dev/kvm is not usable under CI=true"; \
      GTEST_SKIP() << "/dev/kvm is not usable";                                              \
    }                                                                                        \
  } while (0)
