#include "common/output_file.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace iovmm {

OutputFile::OutputFile(std::string path, std::string_view option) : path_(std::move(path)), option_(option) {
  if (path_.empty()) throw UsageError(fmt::format("{}: the path is empty", option_));
  // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader, with SIGINT and SIGTERM blocked.
  constexpr int kFlags = O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  // O_EXCL first, to know whether the file is ours to remove again if the run never starts.
  fd_ = Fd(::open(path_.c_str(), kFlags | O_CREAT | O_EXCL, 0666));
  if (fd_) {
    created_ = true;
  } else if (errno == EEXIST) {
    fd_ = Fd(::open(path_.c_str(), kFlags));
  }
  if (!fd_) {
    const int err = errno;
    if (err == ENXIO) throw UsageError(fmt::format("{} {}: a FIFO with no reader", option_, path_));
    throw UsageError(fmt::format("{} {}: {}", option_, path_, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw UsageError(failure("fstat", errno));
  regular_ = S_ISREG(st.st_mode);
  if (S_ISBLK(st.st_mode)) {
    throw UsageError(fmt::format("{} {}: a block device; expected a file", option_, path_));
  }
  if (!regular_) {
    // A pipe with a reader: from here on, writes wait for the reader as any program's would (the VMM lets SIGINT
    // and SIGTERM end it while it writes).
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(fd_.get(), F_SETFL, flags & ~O_NONBLOCK);
  }
}

OutputFile::~OutputFile() {
  if (created_ && !keep_ && fd_) {
    fd_.reset();
    ::unlink(path_.c_str());
  }
}

std::string OutputFile::failure(std::string_view what, int err) const {
  return fmt::format("{} {}: {}: {}", option_, path_, what, std::strerror(err));
}

std::optional<std::string> OutputFile::replace_contents(std::string_view text) {
  keep_ = true;
  if (!fd_) return failure("write", EBADF);
  if (regular_ && ::ftruncate(fd_.get(), 0) != 0) return failure("truncate", errno);
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = regular_ ? ::pwrite(fd_.get(), text.data() + done, text.size() - done, static_cast<off_t>(done))
                               : ::write(fd_.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure("write", errno);
    if (n == 0) return failure("write", EIO);
    done += static_cast<size_t>(n);
  }
  // Some file systems (NFS, quotas) only report a failed write at close.
  if (::close(fd_.release()) != 0 && errno != EINTR) return failure("close", errno);
  return std::nullopt;
}

}  // namespace iovmm
