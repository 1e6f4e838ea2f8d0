// A raw disk image behind a device model: the one block backend virtio-blk and IDE share. Asynchronous requests go
// through io_uring (liburing), many in flight at once; the device learns of completions by watching
// completion_fd() and calling reap(). Synchronous calls serve devices that must have the data before they answer
// the guest (IDE PIO: the command fetches the sectors so that the first status read finds DRQ).
//
// Errors: open() throws Error naming the file and what failed. A request's failure is its negative errno in the
// completion; the device turns it into the guest's error status (VIRTIO_BLK_S_IOERR, ATA ABRT/UNC) and the VMM keeps
// running. Reads past the end of the image are the device's to refuse (it knows the capacity); a short read or
// write from the host (image truncated under us) completes with -EIO.
//
// Images in tmpfs (or ramfs, hugetlbfs) are memory: their reads and writes are copied at enqueue() on the caller's
// thread and complete at the next reap(), since io_uring would hand each to a worker thread (those file systems
// cannot promise not to block) and the hand-off costs more than the copy.
//
// Threads: one thread at a time uses a backend (the device's lock serialises it).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace iovmm::block {

struct BackendOptions {
  std::string path;
  bool readonly = false;  // open O_RDONLY; writes, discards and write-zeroes fail with -EROFS
  bool direct = false;    // O_DIRECT: bypass the host page cache (buffers and offsets must be aligned, see below)
  unsigned queue_depth = 128;  // io_uring entries; requests beyond it wait in the backend, never fail
  // An OFD lock on the whole image, as QEMU's file.locking: exclusive when writable, shared when read-only, so
  // that a second writer (another VM, another --device of this one, a QEMU) is refused at open. Off: no lock.
  bool locking = true;
  std::string owner = {};  // who opens it (a device's name), for the message that refuses a second user
};

enum class Op : uint8_t { read, write, flush, discard, write_zeroes };

struct Request {
  Op op = Op::read;
  uint64_t offset = 0;        // bytes into the image (read, write, discard, write_zeroes)
  std::span<const iovec> iov{}; // read/write buffers (guest memory); enqueue() copies the iovecs, the memory they
                                // point to must stay valid until the completion
  uint64_t length = 0;        // discard/write_zeroes: bytes
  uint64_t user_data = 0;     // returned with the completion
};

struct Completion {
  uint64_t user_data;
  int64_t result;  // bytes transferred (read/write), 0 (flush, discard, write_zeroes), or -errno
};

class Backend {
 public:
  // Opens and locks the image. Throws Error("disk image PATH: open: No such file or directory") and the like, and
  // for a lock held elsewhere one line naming the holder where the kernel tells it (a POSIX lock's pid; an OFD
  // lock, QEMU's and iovmm's kind, has none, but one held by this process is named by its path).
  [[nodiscard]] static std::unique_ptr<Backend> open(const BackendOptions& options);

  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  ~Backend();  // waits for requests in flight: their buffers are guest memory

  // The file's (or device's) size in bytes, not necessarily a multiple of 512: the device rounds its capacity down.
  [[nodiscard]] uint64_t size_bytes() const;
  [[nodiscard]] bool readonly() const;
  [[nodiscard]] bool direct() const;
  // O_DIRECT alignment (buffer address, offset and length): 512 or the file system's logical block; 1 without it.
  [[nodiscard]] unsigned alignment() const;
  [[nodiscard]] bool supports_discard() const;       // fallocate(PUNCH_HOLE) works on this file
  [[nodiscard]] bool supports_write_zeroes() const;  // fallocate(ZERO_RANGE) works (else writes zeroes)

  // Queues a request; it is handed to the kernel at the next submit_pending() (batching: one io_uring_submit for
  // all the requests a queue notify brought). Never fails: errors arrive as completions.
  void enqueue(const Request& request);
  void submit_pending();
  [[nodiscard]] unsigned in_flight() const;

  // Readable (an eventfd) when completions are waiting. Nonblocking.
  [[nodiscard]] int completion_fd() const;
  // Calls `on_completion` for every finished request, in completion order; returns how many. Also submits requests
  // that were waiting for room in the ring.
  size_t reap(const std::function<void(const Completion&)>& on_completion);
  // Blocks until nothing is in flight, delivering completions as reap() does (device reset).
  void drain(const std::function<void(const Completion&)>& on_completion);

  // Synchronous I/O on the caller's thread: bytes transferred or -errno (short transfers are retried until done or
  // end of file, then -EIO).
  [[nodiscard]] int64_t read_sync(uint64_t offset, std::span<uint8_t> buffer);
  [[nodiscard]] int64_t write_sync(uint64_t offset, std::span<const uint8_t> buffer);
  [[nodiscard]] int64_t flush_sync();  // fdatasync
  [[nodiscard]] int64_t discard_sync(uint64_t offset, uint64_t length);
  [[nodiscard]] int64_t write_zeroes_sync(uint64_t offset, uint64_t length);

 private:
  struct Impl;
  explicit Backend(std::unique_ptr<Impl> impl);
  // A read or write of a memory-backed image, done on the caller's thread: bytes moved or -errno.
  [[nodiscard]] int64_t copy_now(const Request& request);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iovmm::block
