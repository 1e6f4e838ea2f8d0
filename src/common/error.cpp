#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace iovmm {

void throw_errno(std::string_view what) { throw_errno(what, errno); }

void throw_errno(std::string_view what, int err) {
  throw Error(std::string(what) + ": " + std::strerror(err));
}

}  // namespace iovmm
