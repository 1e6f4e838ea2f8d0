// virtio-blk against a real io_uring backend on a temporary image file, with a fake transport: its VirtioContext
// records used_buffers() and fail() calls, and its watch() keeps the handler, which the test runs after poll()ing
// the backend's completion fd, as the transport's event loop would. The driver side is virtio_test_driver.h.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "common/error.h"
#include "devices/virtio/blk.h"
#include "virtio_test_driver.h"

namespace iovmm::devices::virtio {
namespace {

using testing::Buffer;
using testing::VirtqueueDriver;

constexpr uint64_t kImageBytes = 1 << 20;  // 2048 sectors
constexpr uint64_t kRings = 0x10000;       // queue q's rings at kRings + q * 0x10000
constexpr uint64_t kHeaders = 0x100000;    // request i's header at kHeaders + 32 * i, status at +16
constexpr uint64_t kData = 0x200000;
constexpr uint64_t kRamBytes = 0x800000;

uint64_t bit(unsigned feature) { return uint64_t{1} << feature; }

uint8_t pattern_byte(uint64_t offset) { return static_cast<uint8_t>(offset * 131 + offset / 509 + 7); }

// A fresh image of `bytes` bytes filled with pattern_byte(offset).
std::string make_image(const std::string& name, uint64_t bytes = kImageBytes) {
  const auto dir = std::filesystem::path(IOVMM_TEST_TMPDIR) / "virtio_blk";
  std::filesystem::create_directories(dir);
  const auto path = (dir / (name + ".img")).string();
  std::vector<char> data(bytes);
  for (uint64_t i = 0; i < bytes; ++i) data[i] = static_cast<char>(pattern_byte(i));
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(bytes));
  return path;
}

std::vector<uint8_t> file_bytes(const std::string& path, uint64_t offset, uint64_t len) {
  std::vector<uint8_t> out(len);
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
  return out;
}

std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

// The transport's part: queues, the context and the event loop.
class FakeTransport {
 public:
  FakeTransport(VirtioDevice& device, uint64_t features, bool event_idx = false, bool indirect = false,
                uint16_t size = 0)
      : device_(device) {
    const uint16_t queue_size = size ? size : device.queue_max_size();
    queues_.reserve(device.queue_count());
    for (unsigned q = 0; q < device.queue_count(); ++q) {
      queues_.emplace_back(device.queue_max_size());
      drivers_.push_back(std::make_unique<VirtqueueDriver>(memory, kRings + q * 0x10000ull, queue_size));
      drivers_.back()->configure(queues_.back(), event_idx, indirect);
    }
    context_ =
        std::make_unique<VirtioContext>(VirtioContext{memory, queues_, [this](unsigned q) { used_calls.push_back(q); },
                                                      [this](std::string_view why) { failures.emplace_back(why); },
                                                      [this](int fd, std::function<void()> handler) {
                                                        EXPECT_EQ(watched_fd, -1) << "watched twice";
                                                        watched_fd = fd;
                                                        handler_ = std::move(handler);
                                                      },
                                                      [this](int fd) {
                                                        EXPECT_EQ(fd, watched_fd);
                                                        watched_fd = -1;
                                                        handler_ = nullptr;
                                                      }});
    device.activate(*context_, features);
  }

  VirtqueueDriver& driver(unsigned q = 0) { return *drivers_[q]; }
  Virtqueue& queue(unsigned q = 0) { return queues_[q]; }

  // Runs the completion handler until `count` used entries arrived on queue q (or 5 s pass without progress).
  std::vector<vring_used_elem> collect(size_t count, unsigned q = 0) {
    std::vector<vring_used_elem> used;
    while (true) {
      while (auto element = driver(q).next_used()) used.push_back(*element);
      if (used.size() >= count) return used;
      if (!handler_) {
        ADD_FAILURE() << "waiting for completions, but nothing is watched";
        return used;
      }
      pollfd pfd{watched_fd, POLLIN, 0};
      if (::poll(&pfd, 1, 5000) != 1) {
        ADD_FAILURE() << "no completion within 5 s (" << used.size() << " of " << count << ")";
        return used;
      }
      handler_();
    }
  }

  GuestMemory memory{{{0, kRamBytes}}};
  std::vector<unsigned> used_calls;
  std::vector<std::string> failures;
  int watched_fd = -1;

 private:
  VirtioDevice& device_;
  std::vector<Virtqueue> queues_;
  std::vector<std::unique_ptr<VirtqueueDriver>> drivers_;
  std::unique_ptr<VirtioContext> context_;
  std::function<void()> handler_;
};

class VirtioBlkTest : public ::testing::Test {
 protected:
  void open(block::BackendOptions backend_options = {}, VirtioBlkOptions options = {}, bool event_idx = false,
            bool indirect = false) {
    if (backend_options.path.empty()) backend_options.path = image = make_image(test_name());
    image = backend_options.path;
    blk = std::make_unique<VirtioBlk>(block::Backend::open(backend_options), options);
    transport = std::make_unique<FakeTransport>(*blk, blk->device_features(), event_idx, indirect);
  }
  void TearDown() override {
    if (blk) blk->reset();
    if (transport) {
      EXPECT_EQ(transport->watched_fd, -1) << "reset() left the completion fd watched";
    }
  }

  GuestMemory& memory() { return transport->memory; }
  VirtqueueDriver& driver(unsigned q = 0) { return transport->driver(q); }

  // Writes request i's header and returns its gpa; the status byte sits at status_gpa(i).
  uint64_t header(unsigned i, uint32_t type, uint64_t sector) {
    const virtio_blk_outhdr hdr{type, 0, sector};
    const uint64_t gpa = kHeaders + 32ull * i;
    driver().poke(gpa, hdr);
    driver().poke<uint8_t>(status_gpa(i), 0xEE);
    return gpa;
  }
  static uint64_t status_gpa(unsigned i) { return kHeaders + 32ull * i + 16; }
  uint8_t status(unsigned i) { return driver().peek<uint8_t>(status_gpa(i)); }

  // Header, one data buffer, status: the framing Linux uses. Returns the head.
  uint16_t submit(unsigned i, uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t data_len, bool data_writable,
                  unsigned q = 0) {
    std::vector<Buffer> chain{{header(i, type, sector), 16, false}};
    if (data_len) chain.push_back({data_gpa, data_len, data_writable});
    chain.push_back({status_gpa(i), 1, true});
    const uint16_t head = driver(q).add_chain(chain);
    driver(q).make_available(head);
    return head;
  }

  // One request through the device; returns its used length (status via status(i)).
  uint32_t run(unsigned i, uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t data_len, bool data_writable) {
    submit(i, type, sector, data_gpa, data_len, data_writable);
    blk->queue_notify(0);
    auto used = transport->collect(1);
    return used.empty() ? ~0u : used[0].len;
  }

  std::vector<uint8_t> guest_bytes(uint64_t gpa, uint64_t len) {
    std::vector<uint8_t> out(len);
    EXPECT_TRUE(memory().read(gpa, out.data(), len));
    return out;
  }
  static std::vector<uint8_t> pattern(uint64_t offset, uint64_t len) {
    std::vector<uint8_t> out(len);
    for (uint64_t i = 0; i < len; ++i) out[i] = pattern_byte(offset + i);
    return out;
  }

  std::string image;
  std::unique_ptr<VirtioBlk> blk;
  std::unique_ptr<FakeTransport> transport;
};

TEST_F(VirtioBlkTest, FeaturesAndConfiguration) {
  open();
  EXPECT_EQ(blk->device_id(), uint32_t{VIRTIO_ID_BLOCK});
  const uint64_t features = blk->device_features();
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_SEG_MAX));
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_BLK_SIZE));
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_FLUSH));
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_WRITE_ZEROES));
  EXPECT_FALSE(features & bit(VIRTIO_BLK_F_MQ));
  EXPECT_FALSE(features & bit(VIRTIO_BLK_F_RO));
  EXPECT_EQ(blk->queue_count(), 1u);
  EXPECT_EQ(blk->queue_max_size(), 256);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, capacity), 8), kImageBytes / 512);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, capacity), 4), kImageBytes / 512);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, blk_size), 4), 512u);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, seg_max), 4), 254u);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, num_queues), 2), 1u);
  EXPECT_EQ(blk->config_read(blk->config_size(), 4), 0u);
  EXPECT_EQ(blk->config_read(blk->config_size() - 1, 4) >> 8, 0u);
  EXPECT_EQ(blk->config_read(0x1000, 8), 0u);
  blk->config_write(offsetof(virtio_blk_config, capacity), 8, 1);  // read-only: ignored
  EXPECT_EQ(blk->capacity_sectors(), kImageBytes / 512);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, capacity), 8), kImageBytes / 512);
}

TEST_F(VirtioBlkTest, MultiqueueAndReadOnlyFeatures) {
  open({.path = make_image(test_name()), .readonly = true}, {.queues = 4, .queue_size = 64});
  const uint64_t features = blk->device_features();
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_MQ));
  EXPECT_TRUE(features & bit(VIRTIO_BLK_F_RO));
  EXPECT_FALSE(features & bit(VIRTIO_BLK_F_DISCARD));
  EXPECT_FALSE(features & bit(VIRTIO_BLK_F_WRITE_ZEROES));
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, num_queues), 2), 4u);
  EXPECT_EQ(blk->config_read(offsetof(virtio_blk_config, seg_max), 4), 62u);
  EXPECT_EQ(blk->queue_max_size(), 64);
}

TEST(VirtioBlkOptions, OutOfRangeIsAUsageError) {
  const auto path = make_image("options", 4096);
  auto make = [&](VirtioBlkOptions options) {
    return std::make_unique<VirtioBlk>(block::Backend::open({.path = path}), options);
  };
  EXPECT_THROW(make({.queues = 0}), UsageError);
  EXPECT_THROW(make({.queues = 65}), UsageError);
  EXPECT_THROW(make({.queue_size = 0}), UsageError);
  EXPECT_THROW(make({.queue_size = 1}), UsageError);
  EXPECT_THROW(make({.queue_size = 96}), UsageError);
  EXPECT_THROW(make({.serial = std::string(21, 'x')}), UsageError);
  EXPECT_NO_THROW(make({.queues = 64, .queue_size = 32768, .serial = std::string(20, 'x')}));
  EXPECT_NO_THROW(make({.queue_size = 2}));
}

TEST_F(VirtioBlkTest, ReadReturnsTheImage) {
  open();
  EXPECT_EQ(run(0, VIRTIO_BLK_T_IN, 3, kData, 1024, true), 1025u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_bytes(kData, 1024), pattern(3 * 512, 1024));
  EXPECT_EQ(transport->used_calls, std::vector<unsigned>{0});
}

TEST_F(VirtioBlkTest, WriteReachesTheImage) {
  open();
  std::vector<uint8_t> data(2048);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i ^ 0x5A);
  ASSERT_TRUE(memory().write(kData, data.data(), data.size()));
  EXPECT_EQ(run(0, VIRTIO_BLK_T_OUT, 10, kData, 2048, false), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(file_bytes(image, 10 * 512, 2048), data);
  EXPECT_EQ(file_bytes(image, 9 * 512, 512), pattern(9 * 512, 512)) << "neighbours untouched";

  ASSERT_TRUE(memory().write(kData + 0x10000, std::vector<uint8_t>(2048, 0).data(), 2048));
  EXPECT_EQ(run(1, VIRTIO_BLK_T_IN, 10, kData + 0x10000, 2048, true), 2049u);
  EXPECT_EQ(guest_bytes(kData + 0x10000, 2048), data);
}

TEST_F(VirtioBlkTest, AnyLayoutHeaderSplitAndStatusSharingADescriptor) {
  open();
  // Header in two pieces; data and status in one writable descriptor of 513 bytes, then a read of 2 sectors whose
  // data straddles three descriptors.
  const uint64_t hdr = header(0, VIRTIO_BLK_T_IN, 5);
  const uint64_t tail = kData + 0x3000;
  std::vector<Buffer> chain{
      {hdr, 7, false}, {hdr + 7, 9, false}, {kData, 300, true}, {kData + 0x1000, 500, true}, {tail, 225, true}};
  const uint16_t head = driver().add_chain(chain);
  driver().make_available(head);
  blk->queue_notify(0);
  auto used = transport->collect(1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 1025u);
  EXPECT_EQ(driver().peek<uint8_t>(tail + 224), VIRTIO_BLK_S_OK);
  auto expected = pattern(5 * 512, 1024);
  EXPECT_EQ(guest_bytes(kData, 300), std::vector<uint8_t>(expected.begin(), expected.begin() + 300));
  EXPECT_EQ(guest_bytes(kData + 0x1000, 500), std::vector<uint8_t>(expected.begin() + 300, expected.begin() + 800));
  EXPECT_EQ(guest_bytes(tail, 224), std::vector<uint8_t>(expected.begin() + 800, expected.end()));
}

TEST_F(VirtioBlkTest, AnyLayoutHeaderAndDataInOneDescriptor) {
  open();
  // A write whose header and data share one readable descriptor.
  const uint64_t buffer = kData;
  const virtio_blk_outhdr hdr{VIRTIO_BLK_T_OUT, 0, 7};
  driver().poke(buffer, hdr);
  std::vector<uint8_t> data(512, 0xC3);
  ASSERT_TRUE(memory().write(buffer + 16, data.data(), data.size()));
  driver().poke<uint8_t>(status_gpa(0), 0xEE);
  const uint16_t head = driver().add_chain(std::vector<Buffer>{{buffer, 16 + 512, false}, {status_gpa(0), 1, true}});
  driver().make_available(head);
  blk->queue_notify(0);
  ASSERT_EQ(transport->collect(1).size(), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(file_bytes(image, 7 * 512, 512), data);
}

TEST_F(VirtioBlkTest, IndirectChain) {
  open({}, {}, false, true);
  const Buffer chain[] = {{header(0, VIRTIO_BLK_T_IN, 1), 16, false}, {kData, 512, true}, {status_gpa(0), 1, true}};
  driver().make_available(driver().add_indirect_chain(chain, 0x180000));
  blk->queue_notify(0);
  ASSERT_EQ(transport->collect(1).size(), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_bytes(kData, 512), pattern(512, 512));
}

TEST_F(VirtioBlkTest, FlushAndGetId) {
  open();
  EXPECT_EQ(run(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);

  std::vector<uint8_t> id(VIRTIO_BLK_ID_BYTES, 0xFF);
  ASSERT_TRUE(memory().write(kData, id.data(), id.size()));
  EXPECT_EQ(run(1, VIRTIO_BLK_T_GET_ID, 0, kData, VIRTIO_BLK_ID_BYTES, true), 21u);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> expected(VIRTIO_BLK_ID_BYTES, 0);
  std::memcpy(expected.data(), "iovmm", 5);
  EXPECT_EQ(guest_bytes(kData, VIRTIO_BLK_ID_BYTES), expected);
}

TEST_F(VirtioBlkTest, DiscardAndWriteZeroes) {
  open();
  const bool discard = blk->device_features() & bit(VIRTIO_BLK_F_DISCARD);
  virtio_blk_discard_write_zeroes segments[2] = {{20, 4, 0}, {40, 2, 0}};
  ASSERT_TRUE(memory().write(kData, segments, sizeof(segments)));
  EXPECT_EQ(run(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, sizeof(segments), false), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(file_bytes(image, 20 * 512, 4 * 512), std::vector<uint8_t>(4 * 512, 0));
  EXPECT_EQ(file_bytes(image, 40 * 512, 2 * 512), std::vector<uint8_t>(2 * 512, 0));
  EXPECT_EQ(file_bytes(image, 24 * 512, 512), pattern(24 * 512, 512));

  segments[0] = {100, 8, 0};
  ASSERT_TRUE(memory().write(kData, segments, sizeof(segments[0])));
  run(1, VIRTIO_BLK_T_DISCARD, 0, kData, sizeof(segments[0]), false);
  EXPECT_EQ(status(1), discard ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_UNSUPP);
  if (discard) {
    EXPECT_EQ(file_bytes(image, 100 * 512, 8 * 512), std::vector<uint8_t>(8 * 512, 0));
  }

  // Discard takes no flags; write-zeroes only UNMAP.
  segments[0] = {100, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP};
  ASSERT_TRUE(memory().write(kData, segments, sizeof(segments[0])));
  run(2, VIRTIO_BLK_T_DISCARD, 0, kData, sizeof(segments[0]), false);
  EXPECT_EQ(status(2), VIRTIO_BLK_S_UNSUPP);
  run(3, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, sizeof(segments[0]), false);
  EXPECT_EQ(status(3), VIRTIO_BLK_S_OK);
  segments[0] = {100, 8, 2};
  ASSERT_TRUE(memory().write(kData, segments, sizeof(segments[0])));
  run(4, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, sizeof(segments[0]), false);
  EXPECT_EQ(status(4), VIRTIO_BLK_S_UNSUPP);
  // Out of range, and a segment list that is not whole segments.
  segments[0] = {kImageBytes / 512 - 1, 2, 0};
  ASSERT_TRUE(memory().write(kData, segments, sizeof(segments[0])));
  run(5, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, sizeof(segments[0]), false);
  EXPECT_EQ(status(5), VIRTIO_BLK_S_IOERR);
  run(6, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, 12, false);
  EXPECT_EQ(status(6), VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, DiscardAndWriteZeroesNeedTheirFeatures) {
  block::BackendOptions backend{.path = make_image(test_name())};
  blk = std::make_unique<VirtioBlk>(block::Backend::open(backend), VirtioBlkOptions{});
  image = backend.path;
  transport = std::make_unique<FakeTransport>(*blk, bit(VIRTIO_BLK_F_FLUSH));  // neither negotiated
  const virtio_blk_discard_write_zeroes segment{20, 4, 0};
  ASSERT_TRUE(memory().write(kData, &segment, sizeof(segment)));
  run(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, kData, sizeof(segment), false);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_UNSUPP);
  run(1, VIRTIO_BLK_T_DISCARD, 0, kData, sizeof(segment), false);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(file_bytes(image, 20 * 512, 512), pattern(20 * 512, 512));
}

TEST_F(VirtioBlkTest, ReadOnlyRefusesWrites) {
  open({.path = make_image(test_name()), .readonly = true});
  std::vector<uint8_t> data(512, 0x11);
  ASSERT_TRUE(memory().write(kData, data.data(), data.size()));
  EXPECT_EQ(run(0, VIRTIO_BLK_T_OUT, 0, kData, 512, false), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(file_bytes(image, 0, 512), pattern(0, 512));
  EXPECT_EQ(run(1, VIRTIO_BLK_T_IN, 0, kData, 512, true), 513u);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(run(2, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1u);
}

TEST_F(VirtioBlkTest, SectorRangePastTheCapacity) {
  open();
  const uint64_t capacity = kImageBytes / 512;
  run(0, VIRTIO_BLK_T_IN, capacity - 1, kData, 1024, true);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  run(1, VIRTIO_BLK_T_IN, capacity, kData, 512, true);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_IOERR);
  run(2, VIRTIO_BLK_T_OUT, ~uint64_t{0}, kData, 512, false);  // sector * 512 would wrap
  EXPECT_EQ(status(2), VIRTIO_BLK_S_IOERR);
  run(3, VIRTIO_BLK_T_IN, uint64_t{1} << 55, kData, 512, true);
  EXPECT_EQ(status(3), VIRTIO_BLK_S_IOERR);
  run(4, VIRTIO_BLK_T_IN, capacity - 1, kData, 512, true);  // the last sector is fine
  EXPECT_EQ(status(4), VIRTIO_BLK_S_OK);
  EXPECT_TRUE(transport->failures.empty());
}

TEST_F(VirtioBlkTest, TruncatedImageAnswersIoError) {
  open();
  ASSERT_EQ(::truncate(image.c_str(), kImageBytes / 2), 0);
  run(0, VIRTIO_BLK_T_IN, kImageBytes / 512 - 2, kData, 1024, true);  // within the capacity, past the new end
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  run(1, VIRTIO_BLK_T_IN, 0, kData, 512, true);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_TRUE(transport->failures.empty());
}

// A full disk, as the process sees it: writes past RLIMIT_FSIZE fail with EFBIG (SIGXFSZ ignored), as they would
// with ENOSPC. The guest gets VIRTIO_BLK_S_IOERR; the device goes on serving what still works.
TEST_F(VirtioBlkTest, FullDiskAnswersIoError) {
  open();
  ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::truncate(image.c_str(), kImageBytes / 2), 0);  // the image cannot grow back: the limit is its size
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const rlimit limit{kImageBytes / 2, saved.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  run(0, VIRTIO_BLK_T_OUT, kImageBytes / 512 - 8, kData, 4096, false);  // would grow the file past the limit
  EXPECT_EQ(status(0), VIRTIO_BLK_S_IOERR);
  run(1, VIRTIO_BLK_T_OUT, 0, kData, 512, false);  // inside the file: fine
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  EXPECT_TRUE(transport->failures.empty());
}

TEST_F(VirtioBlkTest, BadRequestsAnswerIoErrorOrUnsupported) {
  open();
  // Only 8 bytes of header.
  const uint64_t hdr = header(0, VIRTIO_BLK_T_IN, 0);
  driver().make_available(driver().add_chain(std::vector<Buffer>{{hdr, 8, false}, {status_gpa(0), 1, true}}));
  // A readable descriptor after a writable one.
  driver().make_available(driver().add_chain(std::vector<Buffer>{
      {header(1, VIRTIO_BLK_T_OUT, 0), 16, false}, {kData, 512, true}, {kData, 512, false}, {status_gpa(1), 1, true}}));
  // A read whose data is device-readable, a write whose data is device-writable.
  driver().make_available(driver().add_chain(
      std::vector<Buffer>{{header(2, VIRTIO_BLK_T_IN, 0), 16, false}, {kData, 512, false}, {status_gpa(2), 1, true}}));
  driver().make_available(driver().add_chain(
      std::vector<Buffer>{{header(3, VIRTIO_BLK_T_OUT, 0), 16, false}, {kData, 512, true}, {status_gpa(3), 1, true}}));
  // Not whole sectors.
  driver().make_available(driver().add_chain(
      std::vector<Buffer>{{header(4, VIRTIO_BLK_T_IN, 0), 16, false}, {kData, 500, true}, {status_gpa(4), 1, true}}));
  // Unknown types.
  driver().make_available(
      driver().add_chain(std::vector<Buffer>{{header(5, 0x1234, 0), 16, false}, {status_gpa(5), 1, true}}));
  driver().make_available(driver().add_chain(std::vector<Buffer>{
      {header(6, VIRTIO_BLK_T_IN | VIRTIO_BLK_T_BARRIER, 0), 16, false}, {status_gpa(6), 1, true}}));
  // No writable byte at all: nothing can be answered, the chain goes back with 0 bytes.
  const uint16_t silent = driver().add_chain(std::vector<Buffer>{{header(7, VIRTIO_BLK_T_IN, 0), 16, false}});
  driver().make_available(silent);
  // GET_ID without room, flush with data.
  driver().make_available(driver().add_chain(
      std::vector<Buffer>{{header(8, VIRTIO_BLK_T_GET_ID, 0), 16, false}, {status_gpa(8), 1, true}}));
  driver().make_available(driver().add_chain(std::vector<Buffer>{
      {header(9, VIRTIO_BLK_T_FLUSH, 0), 16, false}, {kData, 512, false}, {status_gpa(9), 1, true}}));

  blk->queue_notify(0);
  auto used = transport->collect(10);
  ASSERT_EQ(used.size(), 10u);
  for (unsigned i : {0, 1, 2, 3, 4, 8, 9}) EXPECT_EQ(status(i), VIRTIO_BLK_S_IOERR) << "request " << i;
  for (unsigned i : {5, 6}) EXPECT_EQ(status(i), VIRTIO_BLK_S_UNSUPP) << "request " << i;
  for (const auto& element : used) EXPECT_EQ(element.len, element.id == silent ? 0u : 1u);
  EXPECT_EQ(file_bytes(image, 0, 512), pattern(0, 512));
  EXPECT_TRUE(transport->failures.empty()) << "request errors are not queue failures";
  EXPECT_EQ(transport->used_calls, std::vector<unsigned>{0}) << "one used_buffers() for the whole batch";
}

TEST_F(VirtioBlkTest, SixtyFourRequestsInFlight) {
  open({}, {.queue_size = 256, .complete_inline = false}, true, false);
  constexpr unsigned kRequests = 64;
  for (unsigned i = 0; i < kRequests; ++i) submit(i, VIRTIO_BLK_T_IN, 8 * i + 1, kData + 0x1000 * i, 4096, true);
  blk->queue_notify(0);
  EXPECT_GT(blk->requests_in_flight(), 0u);
  auto used = transport->collect(kRequests);
  ASSERT_EQ(used.size(), kRequests);
  for (unsigned i = 0; i < kRequests; ++i) {
    EXPECT_EQ(status(i), VIRTIO_BLK_S_OK) << i;
    EXPECT_EQ(guest_bytes(kData + 0x1000 * i, 4096), pattern((8 * i + 1) * 512, 4096)) << i;
  }
  for (const auto& element : used) EXPECT_EQ(element.len, 4097u);
  EXPECT_EQ(blk->requests_in_flight(), 0u);
  EXPECT_LE(transport->used_calls.size(), kRequests);
}

TEST_F(VirtioBlkTest, MultipleQueuesAnswerOnTheirOwnQueue) {
  open({}, {.queues = 2, .queue_size = 16});
  submit(0, VIRTIO_BLK_T_IN, 4, kData, 512, true, 1);
  blk->queue_notify(1);
  auto used = transport->collect(1, 1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_bytes(kData, 512), pattern(4 * 512, 512));
  EXPECT_EQ(transport->used_calls, std::vector<unsigned>{1});
  blk->queue_notify(7);  // no such queue: ignored
  EXPECT_TRUE(transport->failures.empty());
}

TEST_F(VirtioBlkTest, BrokenQueueFailsTheDeviceUntilReset) {
  open();
  driver().write_avail_slot(0, 999);  // head out of range
  driver().set_avail_idx(1);
  blk->queue_notify(0);
  ASSERT_EQ(transport->failures.size(), 1u);
  EXPECT_NE(transport->failures[0].find("names descriptor 999"), std::string::npos) << transport->failures[0];
  blk->queue_notify(0);
  EXPECT_EQ(transport->failures.size(), 1u) << "a failed device stops processing";

  blk->reset();
  transport->queue(0).reset();
  transport = std::make_unique<FakeTransport>(*blk, blk->device_features());
  EXPECT_EQ(run(0, VIRTIO_BLK_T_IN, 0, kData, 512, true), 513u);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, MoreChainsThanDescriptorsFailsTheDevice) {
  block::BackendOptions backend{.path = make_image(test_name())};
  blk = std::make_unique<VirtioBlk>(block::Backend::open(backend), VirtioBlkOptions{.queue_size = 2});
  transport = std::make_unique<FakeTransport>(*blk, blk->device_features());
  // One chain made available three times while the device still holds it (nobody runs the completion handler).
  const uint16_t head =
      driver().add_chain(std::vector<Buffer>{{header(0, VIRTIO_BLK_T_FLUSH, 0), 16, false}, {status_gpa(0), 1, true}});
  for (unsigned i = 0; i < 3; ++i) {
    driver().make_available(head);
    blk->queue_notify(0);
  }
  ASSERT_EQ(transport->failures.size(), 1u);
  EXPECT_NE(transport->failures[0].find("more chains"), std::string::npos) << transport->failures[0];
}

TEST_F(VirtioBlkTest, ResetDropsRequestsInFlight) {
  open({}, {.complete_inline = false});
  for (unsigned i = 0; i < 16; ++i) submit(i, VIRTIO_BLK_T_IN, i, kData + 0x1000 * i, 4096, true);
  blk->queue_notify(0);
  blk->reset();
  EXPECT_EQ(transport->watched_fd, -1);
  EXPECT_EQ(blk->requests_in_flight(), 0u);
  EXPECT_EQ(driver().used_idx(), 0) << "after reset the device does not touch the rings";
  for (unsigned i = 0; i < 16; ++i) EXPECT_EQ(status(i), 0xEE);
  blk->queue_notify(0);  // ignored: not active
}

TEST_F(VirtioBlkTest, DirectIoWithUnalignedGuestBuffers) {
  const auto path = make_image(test_name());
  std::unique_ptr<block::Backend> backend;
  try {
    backend = block::Backend::open({.path = path, .direct = true});
  } catch (const Error& e) {
    GTEST_SKIP() << "no O_DIRECT here: " << e.what();
  }
  const unsigned alignment = backend->alignment();
  blk = std::make_unique<VirtioBlk>(std::move(backend), VirtioBlkOptions{});
  image = path;
  transport = std::make_unique<FakeTransport>(*blk, blk->device_features());
  EXPECT_EQ(blk->config().blk_size, std::max(512u, alignment));
  const uint64_t bytes = std::max<uint64_t>(4096, alignment);
  EXPECT_EQ(run(0, VIRTIO_BLK_T_IN, 0, kData + 8, static_cast<uint32_t>(bytes), true), bytes + 1);
  EXPECT_EQ(status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_bytes(kData + 8, bytes), pattern(0, bytes));
  std::vector<uint8_t> data(bytes, 0x77);
  ASSERT_TRUE(memory().write(kData + 8, data.data(), data.size()));
  run(1, VIRTIO_BLK_T_OUT, 0, kData + 8, static_cast<uint32_t>(bytes), false);
  EXPECT_EQ(status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(file_bytes(image, 0, bytes), data);
}

}  // namespace
}  // namespace iovmm::devices::virtio
