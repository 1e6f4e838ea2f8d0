// Errors that reach the user as one line. Set-up code throws them; the vCPU run loop never lets one escape.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace iovmm {

// A failure with enough context (which ioctl, device, guest address) to be printed as the one line the user sees.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input from the user (options, kernel file, sizes): the command line exits with status 2 before any vCPU runs.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Throws Error("<what>: <strerror(errno)>"), capturing errno before anything can clobber it.
[[noreturn]] void throw_errno(std::string_view what);
[[noreturn]] void throw_errno(std::string_view what, int err);

}  // namespace iovmm
