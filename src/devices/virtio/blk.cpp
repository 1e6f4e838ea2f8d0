#include "devices/virtio/blk.h"

#include <linux/virtio_ids.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices::virtio {
namespace {

// The configuration space and request headers are little-endian (VIRTIO 1.2 §2.4, 5.2.4); we copy them as is.
static_assert(std::endian::native == std::endian::little);

constexpr uint64_t kSectorSize = 512;  // virtio-blk sectors are 512 bytes whatever blk_size says (§5.2.6)
constexpr unsigned kMaxQueues = 64;
// preadv/pwritev (and io_uring's READV/WRITEV) take at most IOV_MAX = 1024 iovecs. seg_max leaves two for data
// descriptors that straddle adjacent RAM regions.
constexpr size_t kMaxIovecs = 1024;
constexpr uint32_t kMaxSegments = kMaxIovecs - 2;
constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per segment, as QEMU's default
constexpr uint32_t kMaxDiscardSegments = 16;
// An O_DIRECT request whose guest buffers are not aligned is copied through a bounce buffer of at most this size;
// beyond it the guest gets IOERR (BLK_SIZE told it the alignment; Linux keeps its buffers aligned anyway).
constexpr uint64_t kMaxBounceBytes = 32ull << 20;

uint64_t bit(unsigned feature) { return uint64_t{1} << feature; }

bool misaligned(const std::vector<iovec>& iov, unsigned alignment) {
  return std::any_of(iov.begin(), iov.end(), [&](const iovec& v) {
    return reinterpret_cast<uintptr_t>(v.iov_base) % alignment != 0 || v.iov_len % alignment != 0;
  });
}

}  // namespace

VirtioBlk::VirtioBlk(std::unique_ptr<block::Backend> backend, VirtioBlkOptions options)
    : backend_(std::move(backend)), options_(std::move(options)) {
  if (!backend_) throw UsageError("virtio-blk: no disk image");
  if (options_.queues == 0 || options_.queues > kMaxQueues) {
    throw UsageError(fmt::format("virtio-blk: {} queues; 1 to {} are supported", options_.queues, kMaxQueues));
  }
  if (options_.queue_size < 2 || !std::has_single_bit(options_.queue_size)) {
    throw UsageError(fmt::format("virtio-blk: queue size {} is not a power of two in 2..32768", options_.queue_size));
  }
  if (options_.serial.size() > VIRTIO_BLK_ID_BYTES) {
    throw UsageError(
        fmt::format("virtio-blk: serial \"{}\" is longer than {} bytes", options_.serial, VIRTIO_BLK_ID_BYTES));
  }

  capacity_ = backend_->size_bytes() / kSectorSize;
  const uint32_t block_size =
      backend_->direct() ? std::max<uint32_t>(kSectorSize, backend_->alignment()) : uint32_t{kSectorSize};
  features_ = bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH);
  if (options_.queues > 1) features_ |= bit(VIRTIO_BLK_F_MQ);
  if (backend_->readonly()) {
    features_ |= bit(VIRTIO_BLK_F_RO);
  } else {
    if (backend_->supports_discard()) features_ |= bit(VIRTIO_BLK_F_DISCARD);
    features_ |= bit(VIRTIO_BLK_F_WRITE_ZEROES);  // the backend writes zeroes where fallocate cannot
  }

  config_.capacity = capacity_;
  // Without indirect descriptors a request takes its segments + header + status from the ring.
  config_.seg_max = std::clamp<uint32_t>(options_.queue_size - 2u, 1u, kMaxSegments);
  config_.blk_size = block_size;
  config_.num_queues = static_cast<uint16_t>(options_.queues);
  const uint32_t block_sectors = block_size / kSectorSize;
  config_.max_discard_sectors = kMaxDiscardSectors;
  config_.max_discard_seg = kMaxDiscardSegments;
  config_.discard_sector_alignment = block_sectors;
  config_.max_write_zeroes_sectors = kMaxDiscardSectors;
  config_.max_write_zeroes_seg = kMaxDiscardSegments;
  config_.write_zeroes_may_unmap = 0;  // the backend zeroes in place; it never deallocates for write-zeroes
}

VirtioBlk::~VirtioBlk() = default;

uint32_t VirtioBlk::device_id() const { return VIRTIO_ID_BLOCK; }

uint64_t VirtioBlk::config_read(uint64_t offset, unsigned size) {
  uint64_t value = 0;
  if (offset < sizeof(config_)) {
    const size_t bytes = std::min<uint64_t>({size, sizeof(value), sizeof(config_) - offset});
    std::memcpy(&value, reinterpret_cast<const uint8_t*>(&config_) + offset, bytes);
  }
  return value;
}

void VirtioBlk::config_write(uint64_t offset, unsigned size, uint64_t value) {
  IOVMM_LOG_RATELIMITED("virtio-blk: ignored {}-byte configuration write of {:#x} at offset {:#x} (read-only)", size,
                        value, offset);
}

void VirtioBlk::activate(VirtioContext& context, uint64_t features) {
  if (context_) reset();
  context_ = &context;
  negotiated_ = features;
  failed_ = false;
  owned_.assign(options_.queues, 0);
  context.watch(backend_->completion_fd(), [this] { on_completions(); });
}

void VirtioBlk::reset() {
  if (context_) {
    // In-flight requests write guest memory until they complete: wait for them, and drop their results, since after
    // reset the device may not touch the rings again.
    backend_->drain([](const block::Completion&) {});
    context_->unwatch(backend_->completion_fd());
  }
  context_ = nullptr;
  negotiated_ = 0;
  failed_ = false;
  owned_.clear();
  slots_.clear();
  slot_used_.clear();
  free_slots_.clear();
  in_flight_ = 0;
}

void VirtioBlk::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  context_->fail(fmt::format("virtio-blk: {}", why));
}

void VirtioBlk::queue_notify(unsigned queue_index) {
  if (!context_ || failed_) return;
  if (queue_index >= options_.queues || queue_index >= context_->queues.size()) {
    IOVMM_LOG_RATELIMITED("virtio-blk: notify for queue {}, which does not exist", queue_index);
    return;
  }
  Virtqueue& queue = context_->queues[queue_index];
  if (!queue.ready()) return;
  GuestMemory& memory = context_->memory;
  std::vector<Immediate> immediate;
  try {
    // Bounded: every popped chain stays owned until it is pushed, and nothing is pushed inside this loop. A driver
    // owns at most size() descriptors, so a chain beyond that reuses descriptors the device holds.
    while (auto chain = queue.pop(memory)) {
      if (owned_[queue_index] >= queue.size()) {
        throw QueueError(
            fmt::format("queue {}: more chains made available than its {} descriptors", queue_index, queue.size()));
      }
      ++owned_[queue_index];
      process_chain(queue_index, *chain, immediate);
    }
  } catch (const QueueError& e) {
    fail(fmt::format("queue {}: {}", queue_index, e.what()));
  }
  backend_->submit_pending();
  // Answers that needed no backend go back only now, so that the driver cannot recycle their descriptors while the
  // loop above runs (which keeps a well-behaved driver within the bound).
  if (failed_) return;
  try {
    for (const auto& answer : immediate) {
      queue.push(memory, answer.head, answer.written);
      --owned_[queue_index];
    }
  } catch (const QueueError& e) {
    fail(fmt::format("queue {}: {}", queue_index, e.what()));
    return;
  }
  if (!immediate.empty()) context_->used_buffers(queue_index);
  // Reads the host serves from its page cache often complete inside the submission: answering them now, on this
  // thread, saves waking the event loop for the completion (a thread wake-up costs more than the read itself).
  if (options_.complete_inline && in_flight_ > 0) on_completions();
}

void VirtioBlk::answer_now(const BlkRequestLayout& layout, uint16_t head, uint8_t status, uint32_t written,
                           std::vector<Immediate>& immediate) {
  if (!context_->memory.write_obj(*layout.status_gpa, status)) written = 0;  // checked RAM at pop: cannot happen
  immediate.push_back({head, written});
}

bool VirtioBlk::sectors_in_range(uint64_t sector, uint64_t count) const {
  return sector <= capacity_ && count <= capacity_ - sector;
}

void VirtioBlk::process_chain(unsigned queue, const DescriptorChain& chain, std::vector<Immediate>& immediate) {
  const BlkRequestLayout layout = split_blk_request(context_->memory, chain);
  if (!layout.status_gpa) {
    IOVMM_LOG_RATELIMITED("virtio-blk: queue {} request {}: no device-writable byte for the status", queue, chain.head);
    immediate.push_back({chain.head, 0});
    return;
  }
  if (!layout.header) {
    IOVMM_LOG_RATELIMITED("virtio-blk: queue {} request {}: {}", queue, chain.head, layout.problem);
    return answer_now(layout, chain.head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  const uint32_t type = layout.header->type;
  switch (type) {
    case VIRTIO_BLK_T_IN:
      return start_read_write(queue, chain.head, layout, true, immediate);
    case VIRTIO_BLK_T_OUT:
      if (backend_->readonly()) {
        IOVMM_LOG_RATELIMITED("virtio-blk: write to a read-only disk (sector {})", layout.header->sector);
        return answer_now(layout, chain.head, VIRTIO_BLK_S_IOERR, 1, immediate);
      }
      return start_read_write(queue, chain.head, layout, false, immediate);
    case VIRTIO_BLK_T_FLUSH: {
      if (layout.readable_bytes != 0 || layout.writable_bytes != 0) {
        IOVMM_LOG_RATELIMITED("virtio-blk: flush request {} carries data", chain.head);
        return answer_now(layout, chain.head, VIRTIO_BLK_S_IOERR, 1, immediate);
      }
      const uint64_t slot = allocate_slot();
      InFlight& request = slots_[slot];
      request.queue = queue;
      request.head = chain.head;
      request.status_gpa = *layout.status_gpa;
      request.written = 1;
      request.pending = 1;
      ++in_flight_;
      backend_->enqueue(block::Request{.op = block::Op::flush, .user_data = slot});
      return;
    }
    case VIRTIO_BLK_T_GET_ID: {
      if (layout.readable_bytes != 0 || layout.writable_bytes == 0) {
        IOVMM_LOG_RATELIMITED("virtio-blk: GET_ID request {} has no room for the ID", chain.head);
        return answer_now(layout, chain.head, VIRTIO_BLK_S_IOERR, 1, immediate);
      }
      char id[VIRTIO_BLK_ID_BYTES] = {};  // NUL-padded; no terminator when the serial fills all 20 bytes
      std::memcpy(id, options_.serial.data(), options_.serial.size());
      const uint64_t bytes = std::min<uint64_t>(sizeof(id), layout.writable_bytes);
      if (!scatter_guest_ranges(context_->memory, layout.writable_data, id, bytes)) {
        return answer_now(layout, chain.head, VIRTIO_BLK_S_IOERR, 1, immediate);
      }
      return answer_now(layout, chain.head, VIRTIO_BLK_S_OK, static_cast<uint32_t>(bytes) + 1, immediate);
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const bool discard = type == VIRTIO_BLK_T_DISCARD;
      if (!(negotiated_ & bit(discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))) {
        return answer_now(layout, chain.head, VIRTIO_BLK_S_UNSUPP, 1, immediate);
      }
      return start_discard_or_zeroes(queue, chain.head, layout, discard, immediate);
    }
    default:
      IOVMM_LOG_RATELIMITED("virtio-blk: unsupported request type {:#x}", type);
      return answer_now(layout, chain.head, VIRTIO_BLK_S_UNSUPP, 1, immediate);
  }
}

void VirtioBlk::start_read_write(unsigned queue, uint16_t head, const BlkRequestLayout& layout, bool is_read,
                                 std::vector<Immediate>& immediate) {
  const auto& data = is_read ? layout.writable_data : layout.readable_data;
  const uint64_t bytes = is_read ? layout.writable_bytes : layout.readable_bytes;
  const uint64_t wrong_way = is_read ? layout.readable_bytes : layout.writable_bytes;
  const uint64_t sector = layout.header->sector;
  const char* what = is_read ? "read" : "write";
  if (wrong_way != 0) {
    IOVMM_LOG_RATELIMITED("virtio-blk: {} at sector {} has {} data bytes in the wrong direction", what, sector,
                          wrong_way);
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  // used.len is 32 bits; a request that large is a guest reusing the same buffers anyway.
  if (bytes % kSectorSize != 0 || bytes >= UINT32_MAX) {
    IOVMM_LOG_RATELIMITED("virtio-blk: {} at sector {} of {} bytes, not whole sectors", what, sector, bytes);
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  if (!sectors_in_range(sector, bytes / kSectorSize)) {
    IOVMM_LOG_RATELIMITED("virtio-blk: {} of {} sectors at sector {} is past the capacity of {} sectors", what,
                          bytes / kSectorSize, sector, capacity_);
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  if (bytes == 0) return answer_now(layout, head, VIRTIO_BLK_S_OK, 1, immediate);

  const uint64_t slot = allocate_slot();
  InFlight& request = slots_[slot];
  if (!map_guest_ranges(context_->memory, data, kMaxIovecs, request.iov)) {
    release_slot(slot);
    IOVMM_LOG_RATELIMITED("virtio-blk: {} at sector {} is split into more than {} pieces", what, sector, kMaxIovecs);
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  const unsigned alignment = backend_->alignment();
  if (backend_->direct() && alignment > 1 && misaligned(request.iov, alignment)) {
    void* bounce = bytes <= kMaxBounceBytes
                       ? std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment)
                       : nullptr;
    if (!bounce || (!is_read && !gather_guest_ranges(context_->memory, data, bounce, bytes))) {
      std::free(bounce);
      release_slot(slot);
      IOVMM_LOG_RATELIMITED("virtio-blk: unaligned {} of {} bytes at sector {} cannot be bounced", what, bytes, sector);
      return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
    }
    request.bounce = {static_cast<uint8_t*>(bounce), std::free};
    request.iov = {iovec{bounce, bytes}};
    if (is_read) request.read_target = data;
  }
  request.queue = queue;
  request.head = head;
  request.status_gpa = *layout.status_gpa;
  request.written = static_cast<uint32_t>((is_read ? bytes : 0) + 1);
  request.pending = 1;
  request.expected = bytes;
  ++in_flight_;
  backend_->enqueue(block::Request{.op = is_read ? block::Op::read : block::Op::write,
                                   .offset = sector * kSectorSize,
                                   .iov = request.iov,
                                   .user_data = slot});
}

void VirtioBlk::start_discard_or_zeroes(unsigned queue, uint16_t head, const BlkRequestLayout& layout, bool discard,
                                        std::vector<Immediate>& immediate) {
  const char* what = discard ? "discard" : "write-zeroes";
  using Segment = virtio_blk_discard_write_zeroes;
  if (layout.writable_bytes != 0 || layout.readable_bytes % sizeof(Segment) != 0) {
    IOVMM_LOG_RATELIMITED("virtio-blk: {} request {} is not a whole number of segments", what, head);
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  const uint64_t count = layout.readable_bytes / sizeof(Segment);
  if (count > kMaxDiscardSegments) {  // §5.2.6.2: more than max_*_seg segments is UNSUPP
    IOVMM_LOG_RATELIMITED("virtio-blk: {} of {} segments, more than {}", what, count, kMaxDiscardSegments);
    return answer_now(layout, head, VIRTIO_BLK_S_UNSUPP, 1, immediate);
  }
  Segment segments[kMaxDiscardSegments];
  if (!gather_guest_ranges(context_->memory, layout.readable_data, segments, count * sizeof(Segment))) {
    return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
  }
  unsigned nonempty = 0;
  for (uint64_t i = 0; i < count; ++i) {
    // Discard takes no flags; write-zeroes only UNMAP, which we may ignore (§5.2.6.2).
    const uint32_t allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
    if (segments[i].flags & ~allowed) {
      IOVMM_LOG_RATELIMITED("virtio-blk: {} segment with unknown flags {:#x}", what, segments[i].flags);
      return answer_now(layout, head, VIRTIO_BLK_S_UNSUPP, 1, immediate);
    }
    if (segments[i].num_sectors > kMaxDiscardSectors ||
        !sectors_in_range(segments[i].sector, segments[i].num_sectors)) {
      IOVMM_LOG_RATELIMITED("virtio-blk: {} of {} sectors at sector {} is out of range (capacity {})", what,
                            segments[i].num_sectors, segments[i].sector, capacity_);
      return answer_now(layout, head, VIRTIO_BLK_S_IOERR, 1, immediate);
    }
    if (segments[i].num_sectors != 0) ++nonempty;
  }
  if (nonempty == 0) return answer_now(layout, head, VIRTIO_BLK_S_OK, 1, immediate);

  const uint64_t slot = allocate_slot();
  InFlight& request = slots_[slot];
  request.queue = queue;
  request.head = head;
  request.status_gpa = *layout.status_gpa;
  request.written = 1;
  request.pending = nonempty;
  ++in_flight_;
  for (uint64_t i = 0; i < count; ++i) {
    if (segments[i].num_sectors == 0) continue;
    backend_->enqueue(block::Request{.op = discard ? block::Op::discard : block::Op::write_zeroes,
                                     .offset = segments[i].sector * kSectorSize,
                                     .length = uint64_t{segments[i].num_sectors} * kSectorSize,
                                     .user_data = slot});
  }
}

uint64_t VirtioBlk::allocate_slot() {
  if (free_slots_.empty()) {
    slots_.emplace_back();
    slot_used_.push_back(true);
    return slots_.size() - 1;
  }
  const uint64_t slot = free_slots_.back();
  free_slots_.pop_back();
  slots_[slot] = InFlight{};
  slot_used_[slot] = true;
  return slot;
}

void VirtioBlk::release_slot(uint64_t slot) {
  slots_[slot] = InFlight{};  // frees the bounce buffer and iovecs now, not when the slot is reused
  slot_used_[slot] = false;
  free_slots_.push_back(slot);
}

void VirtioBlk::on_completions() {
  if (!context_) return;
  uint64_t touched_queues = 0;  // one bit per queue (at most 64)
  backend_->reap(
      [&](const block::Completion& completion) { finish(completion.user_data, completion.result, touched_queues); });
  if (failed_) return;
  for (unsigned queue = 0; queue < options_.queues; ++queue) {
    if (touched_queues & (uint64_t{1} << queue)) context_->used_buffers(queue);
  }
}

void VirtioBlk::finish(uint64_t slot, int64_t result, uint64_t& touched_queues) {
  if (slot >= slots_.size() || !slot_used_[slot]) {
    log::warn("virtio-blk: completion for unknown request {}", slot);
    return;
  }
  InFlight& request = slots_[slot];
  if (result < 0) {
    IOVMM_LOG_RATELIMITED("virtio-blk: request at queue {} descriptor {} failed: {}", request.queue, request.head,
                          std::strerror(static_cast<int>(-result)));
    request.status = VIRTIO_BLK_S_IOERR;
  } else if (request.expected != 0 && static_cast<uint64_t>(result) != request.expected) {
    IOVMM_LOG_RATELIMITED("virtio-blk: request at queue {} descriptor {} moved {} of {} bytes", request.queue,
                          request.head, result, request.expected);
    request.status = VIRTIO_BLK_S_IOERR;
  }
  if (--request.pending > 0) return;
  --in_flight_;
  if (!failed_) {
    GuestMemory& memory = context_->memory;
    if (request.status == VIRTIO_BLK_S_OK && !request.read_target.empty() &&
        !scatter_guest_ranges(memory, request.read_target, request.bounce.get(), request.expected)) {
      request.status = VIRTIO_BLK_S_IOERR;
    }
    if (!memory.write_obj(request.status_gpa, request.status)) request.written = 0;
    try {
      context_->queues[request.queue].push(memory, request.head, request.written);
      --owned_[request.queue];
      touched_queues |= uint64_t{1} << request.queue;
    } catch (const QueueError& e) {
      fail(fmt::format("queue {}: {}", request.queue, e.what()));
    }
  }
  release_slot(slot);
}

}  // namespace iovmm::devices::virtio
