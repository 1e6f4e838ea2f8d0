// block::Backend: opening the image and the synchronous calls; the io_uring half is UringQueue (uring_queue.h).
//
// Sizes: a regular file's size comes from fstat, a block device's from BLKGETSIZE64. An image whose size is not a
// multiple of 512 is accepted and reported as it is; the device rounds its capacity down to whole sectors.
//
// Discard and write-zeroes support is probed once at open() with fallocate past the end of the image (KEEP_SIZE),
// where no data lives: the answer that counts is EOPNOTSUPP. A file system may keep the probed range allocated past
// EOF (ext4 does for ZERO_RANGE); truncating the file to its own size gives those blocks back. A block device
// answers EINVAL past its end after it accepted the mode, which counts as supported. When a later fallocate still
// says EOPNOTSUPP, write-zeroes fall back to writing zeroes and discards complete as done (a discard is a hint).
#include "block/backend.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "block/uring_queue.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/log.h"

namespace iovmm::block {
namespace {
constexpr uint64_t kMaxOffset = INT64_MAX;  // off_t; the kernel refuses anything past it
constexpr uint64_t kProbeBytes = 64 * 1024;

bool valid_range(uint64_t offset, uint64_t length) { return offset <= kMaxOffset && length <= kMaxOffset - offset; }

bool modifies_image(Op op) { return op == Op::write || op == Op::discard || op == Op::write_zeroes; }

// Repeats `step(done)` (one pread/pwrite of what is left) until `size` bytes are done: bytes or -errno.
template <typename Step>
int64_t until_done(size_t size, Step step) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = step(done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EIO;  // end of file before the end of the request
    done += static_cast<size_t>(n);
  }
  return static_cast<int64_t>(done);
}

int64_t fallocate_result(int fd, int mode, uint64_t offset, uint64_t length) {
  int ret;
  do {
    ret = ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (ret < 0 && errno == EINTR);
  return ret < 0 ? -errno : 0;
}

bool fallocate_supported(int fd, int mode, uint64_t size) {
  const uint64_t past_end = (size + kProbeBytes - 1) / kProbeBytes * kProbeBytes;
  const int64_t ret = fallocate_result(fd, mode | FALLOC_FL_KEEP_SIZE, past_end, kProbeBytes);
  return ret != -EOPNOTSUPP && ret != -ENOSYS;
}

// The images this process has locked, so that a second --device on the same image is told which one holds it: an
// OFD lock does not say who holds it (F_OFD_GETLK reports pid -1).
struct LockedImage {
  dev_t device;
  ino_t inode;
  std::string owner;  // a device's name, or the path when it has none
};
std::mutex locked_mutex;
std::vector<LockedImage> locked_images;

std::string holder_of(int fd, const struct stat& info, short wanted) {
  {
    std::lock_guard lock(locked_mutex);
    for (const auto& image : locked_images) {
      if (image.device == info.st_dev && image.inode == info.st_ino) {
        return fmt::format("{} of this VM uses it already", image.owner);
      }
    }
  }
  struct flock probe {};
  probe.l_type = wanted;
  probe.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK) {
    const char* kind = probe.l_type == F_WRLCK ? "write" : "read";
    if (probe.l_pid > 0) {
      std::string command;
      std::ifstream comm(fmt::format("/proc/{}/comm", probe.l_pid));
      std::getline(comm, command);
      return fmt::format("process {}{} holds a {} lock on it", probe.l_pid,
                         command.empty() ? "" : " (" + command + ")", kind);
    }
    return fmt::format("another process holds a {} lock on it (an iovmm or QEMU using it?)", kind);
  }
  return "another process holds a lock on it";
}

// Takes the lock QEMU's file.locking would: exclusive for a writer, shared for readers; the whole file, so that a
// writing QEMU's byte-range locks and a writing iovmm's conflict either way.
void lock_image(int fd, const struct stat& info, const BackendOptions& options, const std::string& context) {
  struct flock lock {};
  lock.l_type = options.readonly ? F_RDLCK : F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) {
    std::lock_guard guard(locked_mutex);
    locked_images.push_back({info.st_dev, info.st_ino, options.owner.empty() ? options.path : options.owner});
    return;
  }
  const int err = errno;
  if (err == EAGAIN || err == EACCES) {
    throw Error(fmt::format("{}: cannot take a {} lock: {} (locking=off opts out)", context,
                            options.readonly ? "shared" : "write", holder_of(fd, info, lock.l_type)));
  }
  // A file system without locks (some FUSE or network ones): like QEMU's locking=auto, go on without one.
  log::warn("{}: the file system does not lock files ({}); a second writer would not be noticed", context,
            std::strerror(err));
}

void unlock_image(const struct stat& info) {
  std::lock_guard guard(locked_mutex);
  // One entry: readers that share an image each have their own.
  auto it = std::find_if(locked_images.begin(), locked_images.end(), [&](const LockedImage& image) {
    return image.device == info.st_dev && image.inode == info.st_ino;
  });
  if (it != locked_images.end()) locked_images.erase(it);
}

unsigned direct_io_alignment(int fd) {
  struct statx info{};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &info) == 0 && (info.stx_mask & STATX_DIOALIGN) != 0 &&
      info.stx_dio_offset_align != 0) {
    return std::max(info.stx_dio_offset_align, info.stx_dio_mem_align);
  }
  return 512;
}
}  // namespace

struct Backend::Impl {
  BackendOptions options;
  Fd file;
  uint64_t size = 0;
  unsigned alignment = 1;
  bool discard = false;
  // The file lives in memory (tmpfs, ramfs, hugetlbfs): a read or write is a copy that never waits for a device,
  // and such file systems cannot say so to io_uring (no IOCB_NOWAIT), which would hand every request to an io-wq
  // thread — a thread wake-up costing more than the copy. They are done at enqueue() on the caller's thread.
  bool memory_backed = false;
  std::unique_ptr<UringQueue> queue;  // declared after `file`: it drains before the file closes
  std::optional<struct stat> locked;  // the image's identity, while this process's lock list names it

  ~Impl() {
    if (locked) unlock_image(*locked);  // the lock itself goes with the file description
  }

  // Write-zeroes without an io_uring: fallocate where it works, else zeroes written from zero_block().
  int64_t write_zeroes(uint64_t offset, uint64_t length) {
    if (queue->zero_range()) {
      const int64_t ret = fallocate_result(file.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
      if (ret != -EOPNOTSUPP) return ret;
      queue->stop_zero_range();
    }
    const std::span<const uint8_t> zeroes = zero_block();
    for (uint64_t done = 0; done < length;) {
      const size_t chunk = std::min<uint64_t>(length - done, zeroes.size());
      const int64_t ret = until_done(chunk, [&](size_t written) {
        return ::pwrite(file.get(), zeroes.data() + written, chunk - written,
                        static_cast<off_t>(offset + done + written));
      });
      if (ret < 0) return ret;
      done += chunk;
    }
    return 0;
  }
};

std::unique_ptr<Backend> Backend::open(const BackendOptions& options) {
  const std::string context = "disk image " + options.path;
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  // O_NONBLOCK for the open only: a FIFO opened read-only would wait for a writer. It is taken off again below, once
  // the file is known to be an image (io_uring answers EAGAIN instead of waiting on an O_NONBLOCK file).
  const int flags =
      (options.readonly ? O_RDONLY : O_RDWR) | (options.direct ? O_DIRECT : 0) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  impl->file = Fd(::open(options.path.c_str(), flags));
  if (!impl->file) {
    const int err = errno;
    // EINVAL from open() with O_DIRECT means the file system does not do direct I/O.
    throw_errno(context + (options.direct && err == EINVAL ? ": open with O_DIRECT" : ": open"), err);
  }
  const int fd = impl->file.get();

  struct stat info{};
  if (::fstat(fd, &info) < 0) throw_errno(context + ": fstat");
  if (S_ISREG(info.st_mode)) {
    impl->size = static_cast<uint64_t>(info.st_size);
  } else if (S_ISBLK(info.st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, &impl->size) < 0) throw_errno(context + ": BLKGETSIZE64");
  } else {
    throw Error(context + ": not a regular file or block device");
  }
  const int status_flags = ::fcntl(fd, F_GETFL);
  if (status_flags < 0 || ::fcntl(fd, F_SETFL, status_flags & ~O_NONBLOCK) != 0) throw_errno(context + ": fcntl");
  if (options.locking) {
    lock_image(fd, info, options, context);
    impl->locked = info;
  }

  impl->alignment = options.direct ? direct_io_alignment(fd) : 1;
  struct statfs fs {};
  impl->memory_backed = ::fstatfs(fd, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC ||
                                                      fs.f_type == HUGETLBFS_MAGIC);
  bool zero_range = false;
  if (!options.readonly) {
    impl->discard = fallocate_supported(fd, FALLOC_FL_PUNCH_HOLE, impl->size);
    zero_range = fallocate_supported(fd, FALLOC_FL_ZERO_RANGE, impl->size);
    if (S_ISREG(info.st_mode)) {
      [[maybe_unused]] const int ret = ::ftruncate(fd, static_cast<off_t>(impl->size));  // blocks the probe kept
    }
  }
  impl->queue = std::make_unique<UringQueue>(fd, options.queue_depth, zero_range, context);
  return std::unique_ptr<Backend>(new Backend(std::move(impl)));
}

Backend::Backend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Backend::~Backend() = default;

uint64_t Backend::size_bytes() const { return impl_->size; }
bool Backend::readonly() const { return impl_->options.readonly; }
bool Backend::direct() const { return impl_->options.direct; }
unsigned Backend::alignment() const { return impl_->alignment; }
bool Backend::supports_discard() const { return impl_->discard; }
bool Backend::supports_write_zeroes() const { return !readonly() && impl_->queue->zero_range(); }

void Backend::enqueue(const Request& request) {
  UringQueue& queue = *impl_->queue;
  if (request.op > Op::write_zeroes) return queue.complete_now(request.user_data, -EINVAL);  // a device's bug
  if (modifies_image(request.op) && readonly()) return queue.complete_now(request.user_data, -EROFS);
  if (request.op != Op::flush) {
    const uint64_t bytes = request.op == Op::read || request.op == Op::write ? iov_bytes(request.iov) : request.length;
    // An offset past off_t would reach the kernel as a negative one (-1 means "the file position" to READV).
    if (!valid_range(request.offset, bytes)) return queue.complete_now(request.user_data, -EINVAL);
    if (bytes == 0) return queue.complete_now(request.user_data, 0);
  }
  if (impl_->memory_backed && (request.op == Op::read || request.op == Op::write)) {
    return queue.complete_now(request.user_data, copy_now(request));
  }
  queue.enqueue(request);
}

int64_t Backend::copy_now(const Request& request) {
  uint64_t position = request.offset;
  int64_t total = 0;
  for (const iovec& piece : request.iov) {
    auto* bytes = static_cast<uint8_t*>(piece.iov_base);
    const int64_t done = until_done(piece.iov_len, [&](size_t moved) {
      const auto at = static_cast<off_t>(position + moved);
      return request.op == Op::read ? ::pread(impl_->file.get(), bytes + moved, piece.iov_len - moved, at)
                                    : ::pwrite(impl_->file.get(), bytes + moved, piece.iov_len - moved, at);
    });
    if (done < 0) return done;
    position += piece.iov_len;
    total += done;
  }
  return total;
}

void Backend::submit_pending() { impl_->queue->submit_pending(); }
unsigned Backend::in_flight() const { return impl_->queue->in_flight(); }
int Backend::completion_fd() const { return impl_->queue->completion_fd(); }

size_t Backend::reap(const std::function<void(const Completion&)>& on_completion) {
  return impl_->queue->reap(on_completion);
}

void Backend::drain(const std::function<void(const Completion&)>& on_completion) {
  impl_->queue->drain(on_completion);
}

int64_t Backend::read_sync(uint64_t offset, std::span<uint8_t> buffer) {
  if (!valid_range(offset, buffer.size())) return -EINVAL;
  return until_done(buffer.size(), [&](size_t done) {
    return ::pread(impl_->file.get(), buffer.data() + done, buffer.size() - done, static_cast<off_t>(offset + done));
  });
}

int64_t Backend::write_sync(uint64_t offset, std::span<const uint8_t> buffer) {
  if (readonly()) return -EROFS;
  if (!valid_range(offset, buffer.size())) return -EINVAL;
  return until_done(buffer.size(), [&](size_t done) {
    return ::pwrite(impl_->file.get(), buffer.data() + done, buffer.size() - done, static_cast<off_t>(offset + done));
  });
}

int64_t Backend::flush_sync() {
  int ret;
  do {
    ret = ::fdatasync(impl_->file.get());
  } while (ret < 0 && errno == EINTR);
  return ret < 0 ? -errno : 0;
}

int64_t Backend::discard_sync(uint64_t offset, uint64_t length) {
  if (readonly()) return -EROFS;
  if (!valid_range(offset, length)) return -EINVAL;
  if (length == 0) return 0;
  const int64_t ret = fallocate_result(impl_->file.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
  return ret == -EOPNOTSUPP ? 0 : ret;  // a discard is a hint
}

int64_t Backend::write_zeroes_sync(uint64_t offset, uint64_t length) {
  if (readonly()) return -EROFS;
  if (!valid_range(offset, length)) return -EINVAL;
  if (length == 0) return 0;
  return impl_->write_zeroes(offset, length);
}

}  // namespace iovmm::block
