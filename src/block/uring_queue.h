// The asynchronous half of block::Backend: one io_uring, the requests waiting for room in it, and the bookkeeping
// that turns CQEs into Completions (short transfers resubmitted, write-zeroes emulated where fallocate cannot).
// Private to src/block; Backend checks requests (read-only image, offset range) before they get here.
//
// Room: at most `depth` requests are in the kernel (prepared or submitted). The CQ ring holds twice that, so it can
// never overflow; everything beyond waits in a FIFO and is prepared as completions free room.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "block/backend.h"
#include "common/fd.h"

namespace iovmm::block {

// Zeroes aligned for O_DIRECT: the source of write-zeroes carried out as writes.
[[nodiscard]] std::span<const uint8_t> zero_block();
// Total length of a request's buffers (saturating: a sum that does not fit is out of any image's range anyway).
[[nodiscard]] uint64_t iov_bytes(std::span<const iovec> iov);

class UringQueue {
 public:
  // `file_fd` stays owned by the caller and must outlive this queue. Throws Error("CONTEXT: io_uring_queue_init: ...").
  UringQueue(int file_fd, unsigned depth, bool zero_range, const std::string& context);
  UringQueue(const UringQueue&) = delete;
  UringQueue& operator=(const UringQueue&) = delete;
  ~UringQueue();  // drains: the kernel may still be writing guest memory

  void enqueue(const Request& request);
  // Completes a request without the kernel (refused by the backend); delivered by the next reap().
  void complete_now(uint64_t user_data, int64_t result);
  void submit_pending();
  [[nodiscard]] unsigned in_flight() const { return in_flight_; }
  [[nodiscard]] int completion_fd() const { return event_fd_.get(); }
  size_t reap(const std::function<void(const Completion&)>& on_completion);
  void drain(const std::function<void(const Completion&)>& on_completion);
  // False once the file system refused FALLOC_FL_ZERO_RANGE: write-zeroes are then written from zero_block().
  [[nodiscard]] bool zero_range() const { return zero_range_; }
  void stop_zero_range() { zero_range_ = false; }

 private:
  struct Pending;
  struct Ring {
    io_uring ring{};
    bool initialised = false;
    ~Ring();
  };

  // Hands a request to the ring; false (and the request back at the head of the FIFO) when the SQ is full.
  bool prepare(std::unique_ptr<Pending> pending);
  void fill_from_waiting();
  // The request's result once a CQE finishes it; nullopt when the CQE only advanced it and it went back to the ring.
  [[nodiscard]] std::optional<int64_t> finish(std::unique_ptr<Pending>& pending, int cqe_result);

  int file_fd_;
  unsigned depth_;
  bool zero_range_;
  Ring ring_;
  Fd event_fd_;
  unsigned in_kernel_ = 0;  // prepared or submitted, not yet reaped
  unsigned in_flight_ = 0;  // enqueued, not yet delivered to a callback
  std::deque<std::unique_ptr<Pending>> waiting_;
  std::deque<Completion> ready_;  // completed without the kernel
};

}  // namespace iovmm::block
