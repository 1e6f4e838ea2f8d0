#include "block/uring_queue.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::block {
namespace {
constexpr unsigned kMaxDepth = 4096;   // more buys nothing for one image and costs locked ring memory
constexpr size_t kMaxIovecs = IOV_MAX;  // READV/WRITEV refuse more; longer lists go in several SQEs
constexpr size_t kZeroBlockBytes = 64 * 1024;
}  // namespace

std::span<const uint8_t> zero_block() {
  alignas(4096) static const uint8_t zeroes[kZeroBlockBytes] = {};
  return zeroes;
}

uint64_t iov_bytes(std::span<const iovec> iov) {
  uint64_t total = 0;
  for (const iovec& segment : iov) {
    if (__builtin_add_overflow(total, segment.iov_len, &total)) return UINT64_MAX;
  }
  return total;
}

struct UringQueue::Pending {
  Op op = Op::read;
  uint64_t offset = 0;
  uint64_t length = 0;  // bytes to transfer, discard or zero
  uint64_t user_data = 0;
  uint64_t done = 0;    // bytes transferred by earlier (short) completions
  // read/write: the caller's iovecs, the first `first_iov` used up and the next one trimmed by what is done.
  // write-zeroes by writing: rebuilt from zero_block() for each SQE.
  std::vector<iovec> iov;
  size_t first_iov = 0;
  bool writing_zeroes = false;  // the SQE in the kernel is a WRITEV from zero_block(), not a FALLOCATE

  void consume(uint64_t bytes) {
    done += bytes;
    while (bytes > 0 && first_iov < iov.size()) {
      iovec& segment = iov[first_iov];
      const uint64_t step = std::min<uint64_t>(bytes, segment.iov_len);
      segment.iov_base = static_cast<uint8_t*>(segment.iov_base) + step;
      segment.iov_len -= step;
      bytes -= step;
      if (segment.iov_len == 0) ++first_iov;
    }
  }

  void build_zero_iovecs() {
    const std::span<const uint8_t> zeroes = zero_block();
    iov.clear();
    first_iov = 0;
    for (uint64_t left = length - done; left > 0 && iov.size() < kMaxIovecs;) {
      const size_t chunk = std::min<uint64_t>(left, zeroes.size());
      // The kernel only reads a WRITEV's buffers; iovec simply has no const flavour.
      iov.push_back({const_cast<uint8_t*>(zeroes.data()), chunk});
      left -= chunk;
    }
  }
};

UringQueue::Ring::~Ring() {
  if (initialised) io_uring_queue_exit(&ring);
}

UringQueue::UringQueue(int file_fd, unsigned depth, bool zero_range, const std::string& context)
    : file_fd_(file_fd), depth_(std::clamp(depth, 1u, kMaxDepth)), zero_range_(zero_range) {
  // SUBMIT_ALL: an SQE the kernel refuses gets an error CQE and does not hold back the ones behind it.
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL;
  const int ret = io_uring_queue_init_params(depth_, &ring_.ring, &params);
  if (ret < 0) throw_errno(context + ": io_uring_queue_init", -ret);
  ring_.initialised = true;

  event_fd_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!event_fd_) throw_errno(context + ": eventfd");
  if (const int err = io_uring_register_eventfd(&ring_.ring, event_fd_.get()); err < 0) {
    throw_errno(context + ": io_uring_register_eventfd", -err);
  }
}

UringQueue::~UringQueue() {
  drain([](const Completion&) {});
}

void UringQueue::enqueue(const Request& request) {
  auto pending = std::make_unique<Pending>();
  pending->op = request.op;
  pending->offset = request.offset;
  pending->user_data = request.user_data;
  if (request.op == Op::read || request.op == Op::write) {
    pending->iov.assign(request.iov.begin(), request.iov.end());
    pending->length = iov_bytes(request.iov);
  } else {
    pending->length = request.length;
  }
  ++in_flight_;
  if (waiting_.empty() && in_kernel_ < depth_) {
    prepare(std::move(pending));
  } else {
    waiting_.push_back(std::move(pending));
  }
}

void UringQueue::complete_now(uint64_t user_data, int64_t result) {
  ready_.push_back({user_data, result});
  ++in_flight_;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(event_fd_.get(), &one, sizeof one);  // cannot overflow here
}

bool UringQueue::prepare(std::unique_ptr<Pending> pending) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_.ring);
  if (sqe == nullptr) {  // not while in_kernel_ <= depth_, but a full SQ must not lose the request
    waiting_.push_front(std::move(pending));
    return false;
  }
  Pending& p = *pending;
  const uint64_t position = p.offset + p.done;
  const uint64_t left = p.length - p.done;
  p.writing_zeroes = p.op == Op::write_zeroes && !zero_range_;
  if (p.writing_zeroes) p.build_zero_iovecs();
  const auto iovecs = static_cast<unsigned>(std::min(p.iov.size() - p.first_iov, kMaxIovecs));

  switch (p.op) {
    case Op::read:
      io_uring_prep_readv(sqe, file_fd_, p.iov.data() + p.first_iov, iovecs, position);
      break;
    case Op::write:
      io_uring_prep_writev(sqe, file_fd_, p.iov.data() + p.first_iov, iovecs, position);
      break;
    case Op::flush:
      io_uring_prep_fsync(sqe, file_fd_, IORING_FSYNC_DATASYNC);
      break;
    case Op::discard:
      io_uring_prep_fallocate(sqe, file_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(position), static_cast<off_t>(left));
      break;
    case Op::write_zeroes:
      if (p.writing_zeroes) {
        io_uring_prep_writev(sqe, file_fd_, p.iov.data(), iovecs, position);
      } else {
        io_uring_prep_fallocate(sqe, file_fd_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                static_cast<off_t>(position), static_cast<off_t>(left));
      }
      break;
  }
  io_uring_sqe_set_data(sqe, pending.release());  // owned by the kernel's SQE until its CQE comes back
  ++in_kernel_;
  return true;
}

void UringQueue::fill_from_waiting() {
  while (!waiting_.empty() && in_kernel_ < depth_) {
    std::unique_ptr<Pending> next = std::move(waiting_.front());
    waiting_.pop_front();
    if (!prepare(std::move(next))) return;
  }
}

std::optional<int64_t> UringQueue::finish(std::unique_ptr<Pending>& pending, int cqe_result) {
  Pending& p = *pending;
  if (cqe_result == -EINTR || cqe_result == -EAGAIN) {  // transient: the same SQE again
    prepare(std::move(pending));
    return std::nullopt;
  }
  const bool transfers = p.op == Op::read || p.op == Op::write || p.writing_zeroes;
  if (!transfers) {
    if (cqe_result == -EOPNOTSUPP && p.op == Op::write_zeroes) {  // the file system can't: write the zeroes
      zero_range_ = false;
      prepare(std::move(pending));
      return std::nullopt;
    }
    if (cqe_result == -EOPNOTSUPP && p.op == Op::discard) return 0;  // a discard is a hint: nothing to report
    return cqe_result;
  }
  if (cqe_result < 0) return cqe_result;
  if (cqe_result == 0) return -EIO;  // end of file (image shrunk under us), or no progress at all
  p.consume(static_cast<uint64_t>(cqe_result));
  if (p.done < p.length) {  // short transfer: the rest in a new SQE
    prepare(std::move(pending));
    return std::nullopt;
  }
  return p.op == Op::write_zeroes ? 0 : static_cast<int64_t>(p.done);
}

void UringQueue::submit_pending() {
  if (io_uring_sq_ready(&ring_.ring) == 0) return;
  // On failure the SQEs stay in the ring and go with the next submit (reap() and drain() submit too).
  if (const int ret = io_uring_submit(&ring_.ring); ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
    IOVMM_LOG_RATELIMITED("block: io_uring_submit: {}", std::strerror(-ret));
  }
}

size_t UringQueue::reap(const std::function<void(const Completion&)>& on_completion) {
  // Reset the eventfd first: a CQE posted after this read signals it again, so no completion is left unannounced.
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t got = ::read(event_fd_.get(), &count, sizeof count);

  size_t delivered = 0;
  // State is settled before each callback, which may enqueue, submit or even reap again.
  const auto deliver = [&](const Completion& completion) {
    --in_flight_;
    ++delivered;
    on_completion(completion);
  };
  while (!ready_.empty()) {
    const Completion completion = ready_.front();
    ready_.pop_front();
    deliver(completion);
  }
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(&ring_.ring, &cqe) == 0) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(io_uring_cqe_get_data(cqe)));
    const int cqe_result = cqe->res;
    io_uring_cqe_seen(&ring_.ring, cqe);
    --in_kernel_;
    const uint64_t user_data = pending->user_data;
    if (const auto result = finish(pending, cqe_result)) deliver({user_data, *result});
  }
  fill_from_waiting();
  submit_pending();
  return delivered;
}

void UringQueue::drain(const std::function<void(const Completion&)>& on_completion) {
  for (;;) {
    reap(on_completion);
    if (in_flight_ == 0) return;
    if (in_kernel_ == 0) continue;  // only completions a callback added without the kernel: reap them
    // Submits too: a request prepared but refused by an earlier submit would otherwise never complete.
    const int ret = io_uring_submit_and_wait(&ring_.ring, 1);
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      // Nothing sensible is left to wait for; closing the ring makes the kernel cancel what it still holds.
      log::error("block: waiting for {} requests in flight: io_uring_enter: {}", in_flight_, std::strerror(-ret));
      return;
    }
  }
}

}  // namespace iovmm::block
