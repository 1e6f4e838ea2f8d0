// block::Backend on real files in the build tree's test-tmp directory: the asynchronous path through io_uring (many
// requests beyond the ring's depth, scatter-gather, flush, discard, write-zeroes, errors) and the synchronous calls.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <vector>

#include "block/backend.h"
#include "common/error.h"

namespace iovmm::block {
namespace {

constexpr size_t kBlock = 4096;

std::filesystem::path test_dir(const std::filesystem::path& root, const std::string& name) {
  const auto dir = root / "block" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path test_dir(const std::string& name) { return test_dir(IOVMM_TEST_TMPDIR, name); }

std::string make_image(const std::filesystem::path& path, size_t size, uint8_t fill = 0) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::vector<char> bytes(size, static_cast<char>(fill));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A recognisable pattern per block: which block, which byte.
std::vector<uint8_t> pattern(size_t size, unsigned seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8));
  return bytes;
}

iovec iov_of(std::vector<uint8_t>& bytes, size_t offset = 0, size_t length = SIZE_MAX) {
  return {bytes.data() + offset, std::min(length, bytes.size() - offset)};
}

std::unique_ptr<Backend> open_backend(const std::string& path, unsigned depth = 32, bool readonly = false) {
  return Backend::open({.path = path, .readonly = readonly, .queue_depth = depth});
}

// Waits on completion_fd() and reaps until nothing is in flight; results by user_data.
std::map<uint64_t, int64_t> wait_all(Backend& backend) {
  std::map<uint64_t, int64_t> results;
  while (backend.in_flight() > 0) {
    pollfd pfd{.fd = backend.completion_fd(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, 1, 10'000);
    if (ready != 1) {
      ADD_FAILURE() << "completion_fd not readable with " << backend.in_flight() << " requests in flight";
      break;
    }
    backend.reap([&](const Completion& c) { EXPECT_TRUE(results.emplace(c.user_data, c.result).second); });
  }
  return results;
}

int64_t run_one(Backend& backend, const Request& request) {
  backend.enqueue(request);
  backend.submit_pending();
  const auto results = wait_all(backend);
  EXPECT_EQ(results.size(), 1u);
  return results.empty() ? INT64_MIN : results.begin()->second;
}

int64_t read_at(Backend& backend, uint64_t offset, std::vector<uint8_t>& buffer) {
  const iovec iov = iov_of(buffer);
  return run_one(backend, {.op = Op::read, .offset = offset, .iov = {&iov, 1}, .user_data = 1});
}

int64_t write_at(Backend& backend, uint64_t offset, std::vector<uint8_t>& buffer) {
  const iovec iov = iov_of(buffer);
  return run_one(backend, {.op = Op::write, .offset = offset, .iov = {&iov, 1}, .user_data = 1});
}

TEST(BlockBackend, ManyRequestsBeyondTheRingDepthAllCompleteWithTheirData) {
  constexpr unsigned kRequests = 256;
  const auto path = make_image(test_dir("many") / "disk.img", kRequests * kBlock);
  auto backend = open_backend(path, 32);
  EXPECT_EQ(backend->size_bytes(), kRequests * kBlock);

  std::vector<std::vector<uint8_t>> written, read_back;
  for (unsigned i = 0; i < kRequests; ++i) written.push_back(pattern(kBlock, i));
  for (unsigned i = 0; i < kRequests; ++i) {
    const iovec iov = iov_of(written[i]);  // dies with this iteration: the backend keeps its own copy
    backend->enqueue({.op = Op::write, .offset = i * kBlock, .iov = {&iov, 1}, .user_data = 1000 + i});
  }
  EXPECT_EQ(backend->in_flight(), kRequests);
  backend->submit_pending();
  auto results = wait_all(*backend);
  ASSERT_EQ(results.size(), kRequests);
  for (unsigned i = 0; i < kRequests; ++i) EXPECT_EQ(results[1000 + i], int64_t{kBlock}) << i;

  read_back.assign(kRequests, std::vector<uint8_t>(kBlock));
  for (unsigned i = 0; i < kRequests; ++i) {
    const iovec iov = iov_of(read_back[i]);
    backend->enqueue({.op = Op::read, .offset = i * kBlock, .iov = {&iov, 1}, .user_data = i});
  }
  backend->submit_pending();
  results = wait_all(*backend);
  ASSERT_EQ(results.size(), kRequests);
  for (unsigned i = 0; i < kRequests; ++i) {
    EXPECT_EQ(results[i], int64_t{kBlock}) << i;
    EXPECT_EQ(read_back[i], written[i]) << i;
  }
  EXPECT_EQ(backend->in_flight(), 0u);
}

TEST(BlockBackend, ScatterGatherSegmentsOfAnySize) {
  const auto path = make_image(test_dir("sg") / "disk.img", 4 * kBlock);
  auto backend = open_backend(path);
  auto data = pattern(2 * kBlock, 7);
  {
    std::vector<iovec> iov = {iov_of(data, 0, 512), iov_of(data, 512, 1000), iov_of(data, 1512, 6680)};
    backend->enqueue({.op = Op::write, .offset = kBlock, .iov = iov, .user_data = 5});
    iov.assign(3, iovec{nullptr, 0});  // the caller's iovecs may change once enqueued
  }
  backend->submit_pending();
  EXPECT_EQ(wait_all(*backend)[5], int64_t{2 * kBlock});

  std::vector<uint8_t> back(2 * kBlock);
  const std::vector<iovec> iov = {iov_of(back, 0, 3), iov_of(back, 3, 4093), iov_of(back, 4096, 4096)};
  EXPECT_EQ(run_one(*backend, {.op = Op::read, .offset = kBlock, .iov = iov, .user_data = 6}), int64_t{2 * kBlock});
  EXPECT_EQ(back, data);
  const auto on_disk = file_bytes(path);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), on_disk.begin() + kBlock));
}

TEST(BlockBackend, MoreSegmentsThanOneSqeTakesGoInSeveral) {
  constexpr size_t kSegments = 2500, kSegment = 512;  // IOV_MAX is 1024
  const auto path = make_image(test_dir("segments") / "disk.img", kSegments * kSegment);
  auto backend = open_backend(path);
  auto data = pattern(kSegments * kSegment, 3);
  std::vector<iovec> iov;
  for (size_t i = 0; i < kSegments; ++i) iov.push_back(iov_of(data, i * kSegment, kSegment));
  EXPECT_EQ(run_one(*backend, {.op = Op::write, .iov = iov}), int64_t{kSegments * kSegment});
  EXPECT_EQ(file_bytes(path), data);

  std::vector<uint8_t> back(data.size());
  iov.clear();
  for (size_t i = 0; i < kSegments; ++i) iov.push_back(iov_of(back, i * kSegment, kSegment));
  EXPECT_EQ(run_one(*backend, {.op = Op::read, .iov = iov}), int64_t{kSegments * kSegment});
  EXPECT_EQ(back, data);
}

TEST(BlockBackend, FlushedWriteIsVisibleThroughAnotherDescriptor) {
  const auto path = make_image(test_dir("flush") / "disk.img", 8 * kBlock);
  auto backend = open_backend(path);
  auto data = pattern(kBlock, 42);
  EXPECT_EQ(write_at(*backend, 3 * kBlock, data), int64_t{kBlock});
  EXPECT_EQ(run_one(*backend, {.op = Op::flush, .user_data = 9}), 0);

  const int other = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  std::vector<uint8_t> seen(kBlock);
  EXPECT_EQ(::pread(other, seen.data(), seen.size(), 3 * kBlock), static_cast<ssize_t>(kBlock));
  ::close(other);
  EXPECT_EQ(seen, data);
}

TEST(BlockBackend, DiscardReadsBackZeroesAndKeepsTheSize) {
  const auto path = make_image(test_dir("discard") / "disk.img", 8 * kBlock, 0xAB);
  auto backend = open_backend(path);
  EXPECT_TRUE(backend->supports_discard());  // ext4, xfs, tmpfs all punch holes
  EXPECT_EQ(run_one(*backend, {.op = Op::discard, .offset = kBlock, .length = 2 * kBlock}), 0);

  std::vector<uint8_t> back(8 * kBlock);
  EXPECT_EQ(read_at(*backend, 0, back), int64_t{8 * kBlock});
  for (size_t i = 0; i < back.size(); ++i) {
    ASSERT_EQ(back[i], i >= kBlock && i < 3 * kBlock ? 0 : 0xAB) << i;
  }
  EXPECT_EQ(std::filesystem::file_size(path), 8 * kBlock);
}

void expect_zeroed(const std::string& path, size_t size, uint64_t offset, uint64_t length, uint8_t fill) {
  const auto bytes = file_bytes(path);
  ASSERT_EQ(bytes.size(), size);
  for (size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_EQ(bytes[i], i >= offset && i < offset + length ? 0 : fill) << i;
  }
}

TEST(BlockBackend, WriteZeroes) {
  const auto path = make_image(test_dir("zeroes") / "disk.img", 8 * kBlock, 0x5A);
  auto backend = open_backend(path);
  EXPECT_EQ(run_one(*backend, {.op = Op::write_zeroes, .offset = 512, .length = 3 * kBlock}), 0);
  expect_zeroed(path, 8 * kBlock, 512, 3 * kBlock, 0x5A);
  EXPECT_EQ(std::filesystem::file_size(path), 8 * kBlock);
}

// tmpfs has no FALLOC_FL_ZERO_RANGE: the zeroes are written, in several chunks and SQEs.
TEST(BlockBackend, WriteZeroesAreWrittenWhereTheFileSystemCannotZeroARange) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm (tmpfs) here";
  const auto dir = test_dir("/dev/shm/iovmm-test-" + std::to_string(::getpid()), "fallback");
  const size_t size = 2 * 1024 * 1024;
  const auto path = make_image(dir / "disk.img", size, 0x77);
  {
    auto backend = open_backend(path);
    EXPECT_FALSE(backend->supports_write_zeroes());
    EXPECT_EQ(run_one(*backend, {.op = Op::write_zeroes, .offset = 4096, .length = 1024 * 1024 + 512}), 0);
    EXPECT_EQ(backend->write_zeroes_sync(size - 1024, 512), 0);
  }
  const auto bytes = file_bytes(path);
  for (size_t i = 0; i < size; ++i) {
    const bool zero = (i >= 4096 && i < 4096 + 1024 * 1024 + 512) || (i >= size - 1024 && i < size - 512);
    ASSERT_EQ(bytes[i], zero ? 0 : 0x77) << i;
  }
  std::filesystem::remove_all(dir.parent_path().parent_path());
}

TEST(BlockBackend, ReadOnlyImageRefusesEveryChangeWithErofs) {
  const auto path = make_image(test_dir("readonly") / "disk.img", 4 * kBlock, 0x11);
  ::chmod(path.c_str(), 0444);  // opening it read-write would fail (except for root)
  auto backend = open_backend(path, 8, /*readonly=*/true);
  EXPECT_TRUE(backend->readonly());
  EXPECT_FALSE(backend->supports_discard());
  EXPECT_FALSE(backend->supports_write_zeroes());

  auto data = pattern(kBlock, 1);
  const iovec iov = iov_of(data);
  backend->enqueue({.op = Op::write, .iov = {&iov, 1}, .user_data = 1});
  backend->enqueue({.op = Op::discard, .length = kBlock, .user_data = 2});
  backend->enqueue({.op = Op::write_zeroes, .length = kBlock, .user_data = 3});
  backend->submit_pending();
  const auto results = wait_all(*backend);
  EXPECT_EQ(results, (std::map<uint64_t, int64_t>{{1, -EROFS}, {2, -EROFS}, {3, -EROFS}}));
  EXPECT_EQ(backend->write_sync(0, data), -EROFS);
  EXPECT_EQ(backend->discard_sync(0, kBlock), -EROFS);
  EXPECT_EQ(backend->write_zeroes_sync(0, kBlock), -EROFS);

  std::vector<uint8_t> back(kBlock);
  EXPECT_EQ(read_at(*backend, 0, back), int64_t{kBlock});
  EXPECT_EQ(back, std::vector<uint8_t>(kBlock, 0x11));
  EXPECT_EQ(run_one(*backend, {.op = Op::flush}), 0);
  EXPECT_EQ(file_bytes(path), std::vector<uint8_t>(4 * kBlock, 0x11));
}

TEST(BlockBackend, MissingImageThrowsNamingThePath) {
  const auto path = (test_dir("missing") / "nowhere.img").string();
  try {
    (void)open_backend(path);
    FAIL() << "opened a missing image";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "disk image " + path + ": open: No such file or directory");
  }
}

TEST(BlockBackend, DirectoryIsNotADiskImage) {
  const auto dir = test_dir("directory");
  EXPECT_THROW((void)open_backend(dir.string(), 8, /*readonly=*/true), Error);
}

TEST(BlockBackend, SizeThatIsNotAMultipleOf512IsReportedAsItIs) {
  const auto path = make_image(test_dir("odd") / "disk.img", 1000);
  EXPECT_EQ(open_backend(path)->size_bytes(), 1000u);
}

TEST(BlockBackend, ReadPastTheEndOfTheFileIsEio) {
  const auto path = make_image(test_dir("eof") / "disk.img", kBlock + 100, 0x33);
  auto backend = open_backend(path);
  std::vector<uint8_t> back(kBlock);
  EXPECT_EQ(read_at(*backend, kBlock, back), -EIO);       // 100 bytes, then end of file
  EXPECT_EQ(read_at(*backend, 4 * kBlock, back), -EIO);   // nothing at all
  EXPECT_EQ(backend->read_sync(kBlock, back), -EIO);
  EXPECT_EQ(read_at(*backend, 100, back), int64_t{kBlock});  // still fine inside
}

TEST(BlockBackend, OffsetsBeyondOffTAreRefused) {
  const auto path = make_image(test_dir("range") / "disk.img", kBlock);
  auto backend = open_backend(path);
  std::vector<uint8_t> buffer(512);
  EXPECT_EQ(read_at(*backend, UINT64_MAX, buffer), -EINVAL);  // -1 would mean "the file position" to READV
  EXPECT_EQ(run_one(*backend, {.op = Op::discard, .offset = 1ull << 62, .length = 1ull << 62}), -EINVAL);
  EXPECT_EQ(backend->read_sync(UINT64_MAX - 10, buffer), -EINVAL);
  EXPECT_EQ(run_one(*backend, {.op = Op::write_zeroes, .offset = 0, .length = 0}), 0);
}

TEST(BlockBackend, DirectIoRoundTripWithAlignedBuffers) {
  const auto path = make_image(test_dir("direct") / "disk.img", 16 * kBlock);
  std::unique_ptr<Backend> backend;
  try {
    backend = Backend::open({.path = path, .direct = true, .queue_depth = 4});
  } catch (const Error& e) {
    GTEST_SKIP() << "O_DIRECT refused by the test directory's file system: " << e.what();
  }
  EXPECT_TRUE(backend->direct());
  const unsigned alignment = backend->alignment();
  EXPECT_GE(alignment, 512u);
  EXPECT_LE(alignment, kBlock);
  const auto aligned = [](size_t size) {
    return std::unique_ptr<uint8_t, decltype(&std::free)>(static_cast<uint8_t*>(std::aligned_alloc(kBlock, size)),
                                                          &std::free);
  };
  constexpr size_t kSize = 8 * kBlock;
  auto out = aligned(kSize), in = aligned(kSize);
  const auto data = pattern(kSize, 9);
  std::copy(data.begin(), data.end(), out.get());
  const iovec write_iov[] = {{out.get(), kBlock}, {out.get() + kBlock, kSize - kBlock}};
  EXPECT_EQ(run_one(*backend, {.op = Op::write, .offset = 2 * kBlock, .iov = write_iov}), int64_t{kSize});
  const iovec read_iov[] = {{in.get(), kSize}};
  EXPECT_EQ(run_one(*backend, {.op = Op::read, .offset = 2 * kBlock, .iov = read_iov}), int64_t{kSize});
  EXPECT_TRUE(std::equal(data.begin(), data.end(), in.get()));
  EXPECT_EQ(run_one(*backend, {.op = Op::write_zeroes, .offset = 2 * kBlock, .length = kBlock}), 0);
  EXPECT_EQ(backend->read_sync(2 * kBlock, {in.get(), kBlock}), int64_t{kBlock});
  EXPECT_TRUE(std::all_of(in.get(), in.get() + kBlock, [](uint8_t b) { return b == 0; }));
}

TEST(BlockBackend, CompletionFdIsReadableExactlyWhileCompletionsWait) {
  const auto path = make_image(test_dir("eventfd") / "disk.img", kBlock, 0x44);
  auto backend = open_backend(path);
  const int fd = backend->completion_fd();
  EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);

  std::vector<uint8_t> back(kBlock);
  const iovec iov = iov_of(back);
  backend->enqueue({.op = Op::read, .iov = {&iov, 1}, .user_data = 77});
  backend->submit_pending();
  ASSERT_EQ(::poll(&pfd, 1, 10'000), 1);
  std::vector<Completion> seen;
  EXPECT_EQ(backend->reap([&](const Completion& c) { seen.push_back(c); }), 1u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].user_data, 77u);
  EXPECT_EQ(seen[0].result, int64_t{kBlock});
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
  EXPECT_EQ(backend->reap([](const Completion&) { ADD_FAILURE(); }), 0u);
}

TEST(BlockBackend, DrainSubmitsAndDeliversEverything) {
  constexpr unsigned kRequests = 100;
  const auto path = make_image(test_dir("drain") / "disk.img", kRequests * kBlock);
  auto backend = open_backend(path, 8);
  auto data = pattern(kBlock, 5);
  const iovec iov = iov_of(data);
  for (unsigned i = 0; i < kRequests; ++i) {
    backend->enqueue({.op = Op::write, .offset = i * kBlock, .iov = {&iov, 1}, .user_data = i});
  }
  backend->enqueue({.op = Op::flush, .user_data = kRequests});
  // No submit_pending(): drain() hands over what was prepared and what waited for room.
  std::map<uint64_t, int64_t> results;
  backend->drain([&](const Completion& c) { results[c.user_data] = c.result; });
  EXPECT_EQ(backend->in_flight(), 0u);
  ASSERT_EQ(results.size(), kRequests + 1);
  for (unsigned i = 0; i < kRequests; ++i) EXPECT_EQ(results[i], int64_t{kBlock});
  EXPECT_EQ(results[kRequests], 0);
}

TEST(BlockBackend, CompletionCallbackMayEnqueueMore) {
  const auto path = make_image(test_dir("chain") / "disk.img", 4 * kBlock);
  auto backend = open_backend(path, 2);
  auto data = pattern(kBlock, 8);
  const iovec iov = iov_of(data);
  std::vector<uint64_t> order;
  backend->enqueue({.op = Op::write, .iov = {&iov, 1}, .user_data = 0});
  backend->submit_pending();
  backend->drain([&](const Completion& c) {
    order.push_back(c.user_data);
    if (c.user_data < 3) {
      backend->enqueue({.op = Op::write, .offset = (c.user_data + 1) * kBlock, .iov = {&iov, 1},
                        .user_data = c.user_data + 1});
      backend->submit_pending();
    }
  });
  EXPECT_EQ(order, (std::vector<uint64_t>{0, 1, 2, 3}));
}

TEST(BlockBackend, DestructorWaitsForRequestsInFlight) {
  constexpr unsigned kRequests = 64;
  const auto path = make_image(test_dir("destroy") / "disk.img", kRequests * kBlock);
  auto data = pattern(kRequests * kBlock, 6);
  {
    auto backend = open_backend(path, 16);
    for (unsigned i = 0; i < kRequests; ++i) {
      const iovec iov = iov_of(data, i * kBlock, kBlock);
      backend->enqueue({.op = Op::write, .offset = i * kBlock, .iov = {&iov, 1}, .user_data = i});
    }
    backend->submit_pending();
  }
  EXPECT_EQ(file_bytes(path), data);
}

TEST(BlockBackend, SynchronousCalls) {
  const auto path = make_image(test_dir("sync") / "disk.img", 8 * kBlock, 0x99);
  auto backend = open_backend(path);
  const auto data = pattern(3 * kBlock, 4);
  EXPECT_EQ(backend->write_sync(kBlock, data), int64_t{3 * kBlock});
  EXPECT_EQ(backend->flush_sync(), 0);
  std::vector<uint8_t> back(3 * kBlock);
  EXPECT_EQ(backend->read_sync(kBlock, back), int64_t{3 * kBlock});
  EXPECT_EQ(back, data);

  EXPECT_EQ(backend->discard_sync(kBlock, kBlock), 0);
  EXPECT_EQ(backend->write_zeroes_sync(2 * kBlock, kBlock), 0);
  EXPECT_EQ(backend->read_sync(kBlock, back), int64_t{3 * kBlock});
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 2 * kBlock, [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::equal(back.begin() + 2 * kBlock, back.end(), data.begin() + 2 * kBlock));
  EXPECT_EQ(backend->read_sync(0, {back.data(), 10}), 10);
  EXPECT_EQ(back[0], 0x99);
  EXPECT_EQ(backend->read_sync(0, {}), 0);
}

// ---- image locking: QEMU's file.locking, an OFD lock per open image -------------------------------------------

std::string open_error(const BackendOptions& options) {
  try {
    (void)Backend::open(options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BlockBackendLocking, SecondWriterIsRefusedAndNamesTheFirst) {
  const auto path = make_image(test_dir("lock_writers") / "disk.img", 4 * kBlock);
  auto first = Backend::open({.path = path, .owner = "disk0"});
  const std::string message = open_error({.path = path, .owner = "disk1"});
  EXPECT_EQ(message, "disk image " + path + ": cannot take a write lock: disk0 of this VM uses it already "
                     "(locking=off opts out)");
  // Readers are refused while a writer has it, and a writer while readers have it.
  EXPECT_NE(open_error({.path = path, .readonly = true}).find("cannot take a shared lock"), std::string::npos);
  first.reset();
  auto reader = Backend::open({.path = path, .readonly = true});
  auto another_reader = Backend::open({.path = path, .readonly = true});
  EXPECT_NE(open_error({.path = path}).find("cannot take a write lock"), std::string::npos);
  reader.reset();
  another_reader.reset();
  // The lock goes with the last close: the image is free again.
  EXPECT_NO_THROW((void)Backend::open({.path = path}));
}

TEST(BlockBackendLocking, LockingOffOptsOut) {
  const auto path = make_image(test_dir("lock_off") / "disk.img", 4 * kBlock);
  auto first = Backend::open({.path = path, .locking = false});
  auto second = Backend::open({.path = path, .locking = false});
  // Without a lock of its own, a locking=off user does not stop a locking one either (as in QEMU).
  EXPECT_NO_THROW((void)Backend::open({.path = path}));
}

// Another process's lock: an OFD lock (iovmm's, QEMU's) does not say who holds it; a POSIX lock does.
TEST(BlockBackendLocking, LockHeldByAnotherProcess) {
  const auto path = make_image(test_dir("lock_other") / "disk.img", 4 * kBlock);
  for (const int command : {F_OFD_SETLK, F_SETLK}) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      const int fd = ::open(path.c_str(), O_RDWR);
      struct flock lock {};
      lock.l_type = F_WRLCK;
      lock.l_whence = SEEK_SET;
      const char ok = fd >= 0 && ::fcntl(fd, command, &lock) == 0 ? 'y' : 'n';
      [[maybe_unused]] auto n = ::write(ready[1], &ok, 1);
      ::pause();  // until killed
      ::_exit(0);
    }
    ::close(ready[1]);
    char ok = 0;
    ASSERT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    EXPECT_EQ(ok, 'y');
    const std::string message = open_error({.path = path});
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    if (command == F_OFD_SETLK) {
      EXPECT_NE(message.find("another process holds a write lock on it"), std::string::npos) << message;
    } else {
      EXPECT_NE(message.find("process " + std::to_string(child)), std::string::npos) << message;
    }
  }
  EXPECT_NO_THROW((void)Backend::open({.path = path}));  // the holder is gone, and so is its lock
}

}  // namespace
}  // namespace iovmm::block
