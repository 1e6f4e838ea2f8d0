// ioctl with errno captured and the ioctl's name in the error.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <string_view>

#include "common/error.h"

namespace iovmm::kvm {

// Retries on EINTR; throws Error("<name>: <strerror>") on failure; returns the ioctl's non-negative result.
template <typename Arg>
int checked_ioctl(int fd, unsigned long request, Arg arg, std::string_view name) {
  int result;
  do {
    result = ::ioctl(fd, request, arg);
  } while (result < 0 && errno == EINTR);
  if (result < 0) throw_errno(name);
  return result;
}

}  // namespace iovmm::kvm

#define IOVMM_KVM_IOCTL(fd, request, arg) ::iovmm::kvm::checked_ioctl((fd), (request), (arg), #request)
