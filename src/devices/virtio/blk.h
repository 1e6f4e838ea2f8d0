// virtio-blk (VIRTIO 1.2, section 5.2): a disk image behind one or more request queues, served asynchronously by a
// block::Backend (io_uring). Transport-independent: virtio-mmio or virtio-pci carries it (device.h).
//
// Models:
//   - Requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES, in any descriptor layout (blk_request.h). Data moves
//     zero-copy: the backend's iovecs point straight into guest RAM (with O_DIRECT, misaligned guest buffers go
//     through an aligned bounce buffer instead).
//   - Features: SEG_MAX, BLK_SIZE (512, or the backend's O_DIRECT alignment), FLUSH, MQ (queues > 1), RO (read-only
//     image), DISCARD (when the image can punch holes), WRITE_ZEROES (writable images: the backend writes zeroes where
//     fallocate cannot). The transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX.
//   - Many requests in flight per queue; completions are reaped from the backend's eventfd (VirtioContext::watch)
//     and returned with one used_buffers() per queue per batch.
//
// Guest mistakes in a request (bad layout, data in the wrong direction, a length that is not whole sectors, a range
// past the capacity, a write to a read-only disk) answer VIRTIO_BLK_S_IOERR; an unknown type, or DISCARD or
// WRITE_ZEROES that were not negotiated or carry unknown flags, VIRTIO_BLK_S_UNSUPP (§5.2.6.2). A broken queue
// (QueueError), or more chains in flight than the queue has descriptors, fails the device until reset.
//
// Leaves out: GEOMETRY, TOPOLOGY, CONFIG_WCE (the cache is always write-back, FLUSH makes it durable), SIZE_MAX,
// SECURE_ERASE, the legacy SCSI and barrier requests (UNSUPP), and zoned devices.
#pragma once

#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "devices/virtio/blk_request.h"
#include "devices/virtio/device.h"

namespace iovmm::devices::virtio {

struct VirtioBlkOptions {
  unsigned queues = 1;           // 1..64 request queues (MQ when more than one)
  uint16_t queue_size = 256;     // a power of two in 2..32768
  std::string serial = "iovmm";  // GET_ID's answer, at most 20 bytes (VIRTIO_BLK_ID_BYTES)
  // Answer requests that completed during their submission (reads from the host's page cache) on the notifying
  // thread, instead of waiting for the completion handler: saves a thread wake-up per request.
  bool complete_inline = true;
};

class VirtioBlk final : public VirtioDevice {
 public:
  // Throws UsageError for options out of range.
  VirtioBlk(std::unique_ptr<block::Backend> backend, VirtioBlkOptions options);
  ~VirtioBlk() override;  // the transport calls reset() first; the backend then waits for nothing

  [[nodiscard]] uint32_t device_id() const override;
  [[nodiscard]] uint64_t device_features() const override { return features_; }
  [[nodiscard]] unsigned queue_count() const override { return options_.queues; }
  [[nodiscard]] uint16_t queue_max_size() const override { return options_.queue_size; }

  [[nodiscard]] uint32_t config_size() const override { return sizeof(config_); }
  [[nodiscard]] uint64_t config_read(uint64_t offset, unsigned size) override;
  void config_write(uint64_t offset, unsigned size, uint64_t value) override;  // every field is read-only

  void activate(VirtioContext& context, uint64_t features) override;
  void queue_notify(unsigned queue) override;
  void reset() override;

  [[nodiscard]] std::string_view type_name() const override { return "virtio-blk"; }

  [[nodiscard]] uint64_t capacity_sectors() const { return capacity_; }
  [[nodiscard]] const virtio_blk_config& config() const { return config_; }
  [[nodiscard]] unsigned requests_in_flight() const { return in_flight_; }

 private:
  // A popped chain the backend is working on: one backend request, or one per DISCARD/WRITE_ZEROES segment.
  struct InFlight {
    unsigned queue = 0;
    uint16_t head = 0;
    uint64_t status_gpa = 0;
    uint32_t written = 0;   // what push() reports: data the device may have written + the status byte
    unsigned pending = 0;   // backend requests not yet completed
    uint64_t expected = 0;  // bytes a read or write must transfer
    uint8_t status = VIRTIO_BLK_S_OK;
    std::vector<iovec> iov;               // kept until completion: guest RAM, or the bounce buffer
    std::vector<GuestRange> read_target;  // O_DIRECT read through `bounce`: where the data goes afterwards
    std::unique_ptr<uint8_t, void (*)(void*)> bounce{nullptr, nullptr};
  };
  // Answers that need no backend, pushed together after the pop loop (see queue_notify).
  struct Immediate {
    uint16_t head;
    uint32_t written;
  };

  void process_chain(unsigned queue, const DescriptorChain& chain, std::vector<Immediate>& immediate);
  // Returns the chain with `status` at once (written: bytes in the device-writable part, status included).
  void answer_now(const BlkRequestLayout& layout, uint16_t head, uint8_t status, uint32_t written,
                  std::vector<Immediate>& immediate);
  void start_read_write(unsigned queue, uint16_t head, const BlkRequestLayout& layout, bool is_read,
                        std::vector<Immediate>& immediate);
  void start_discard_or_zeroes(unsigned queue, uint16_t head, const BlkRequestLayout& layout, bool discard,
                               std::vector<Immediate>& immediate);
  [[nodiscard]] bool sectors_in_range(uint64_t sector, uint64_t count) const;
  [[nodiscard]] uint64_t allocate_slot();
  void release_slot(uint64_t slot);
  void on_completions();
  void finish(uint64_t slot, int64_t result, uint64_t& touched_queues);
  void fail(const std::string& why);

  std::unique_ptr<block::Backend> backend_;
  VirtioBlkOptions options_;
  uint64_t capacity_ = 0;  // 512-byte sectors
  uint64_t features_ = 0;
  virtio_blk_config config_{};

  VirtioContext* context_ = nullptr;  // between activate() and reset()
  uint64_t negotiated_ = 0;
  bool failed_ = false;
  std::vector<uint32_t> owned_;  // per queue: chains popped and not yet pushed
  std::vector<InFlight> slots_;  // indexed by the backend request's user_data
  std::vector<uint64_t> free_slots_;
  std::vector<bool> slot_used_;
  unsigned in_flight_ = 0;
};

}  // namespace iovmm::devices::virtio
