// A dead or misbehaving server never hangs or crashes the VM: each kind of bad answer (or no answer) reaches
// on_failure once, with a line naming the device and the access, and the proxy then reads all-ones. Also the
// server's side: a malformed command ends its session instead of being guessed at.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "common/fd.h"
#include "dispatch/ioregionfd/proxy.h"
#include "dispatch/ioregionfd/server.h"
#include "dispatch/ioregionfd/transport.h"
#include "dispatch/ioregionfd/wire.h"
#include "test_ioregionfd_support.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

using testing::FailureLog;
using testing::FakeRegisters;
using namespace std::chrono_literals;

std::pair<Fd, Fd> socket_pair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  return {Fd(sv[0]), Fd(sv[1])};
}

// A server that answers every command with whatever `answer` sends (given the decoded command), on a thread.
class BadServer {
 public:
  using Answer = std::function<void(int fd, const Command& command)>;
  BadServer(Fd fd, Answer answer) : fd_(std::move(fd)), thread_([this, answer] {
    Message in{};
    for (;;) {
      ReceiveResult r = receive_message(fd_.get(), in, 0, std::nullopt);
      if (r.status != IoStatus::ok) return;
      Command c;
      if (decode(in, c) != WireError::ok) return;
      answer(fd_.get(), c);
    }
  }) {}
  ~BadServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }

 private:
  Fd fd_;
  std::thread thread_;
};

// Unchecked: the proxy may rightly have hung up by the time a bad server answers.
void send_raw(int fd, const void* data, size_t length) { (void)::send(fd, data, length, MSG_NOSIGNAL); }

struct Fixture {
  FailureLog failures;
  std::shared_ptr<IoregionfdProxy> proxy;
  std::unique_ptr<BadServer> server;

  explicit Fixture(BadServer::Answer answer, bool posted = false) {
    auto [vmm, dev] = socket_pair();
    Options o;
    o.posted = posted;
    o.timeout = 150ms;
    o.on_failure = failures.handler();
    proxy = std::make_shared<IoregionfdProxy>("pci-testdev", std::move(vmm), o);
    server = std::make_unique<BadServer>(std::move(dev), std::move(answer));
  }

  // One failed read: all-ones, one message containing `expected`, and the channel stays dead quietly.
  void expect_read_fails(const std::string& expected) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(proxy->read(0, 0x8, 4), 0xffffffffu);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    auto messages = failures.take();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_NE(messages[0].find(expected), std::string::npos) << messages[0];
    EXPECT_EQ(messages[0].rfind("ioregionfd: pci-testdev server ", 0), 0u) << messages[0];
    EXPECT_TRUE(proxy->failed());
    EXPECT_EQ(proxy->read(0, 0x8, 8), ~0ull);
    proxy->write(0, 0x8, 4, 1);
    EXPECT_EQ(failures.take().size(), 1u);  // reported once
  }
};

Reply good_reply(const Command& c, uint64_t data = 0) { return Reply{data, c.user_data}; }

TEST(IoregionfdFailures, ServerClosesItsSocket) {
  Fixture f([](int fd, const Command&) { ::shutdown(fd, SHUT_RDWR); });
  f.expect_read_fails("closed its socket during a 4-byte read of region 0 offset 0x8");
}

TEST(IoregionfdFailures, ServerNeverAnswers) {
  Fixture f([](int, const Command&) {});
  f.expect_read_fails("did not answer a 4-byte read of region 0 offset 0x8 within 150 ms");
}

TEST(IoregionfdFailures, ServerRepliesGarbage) {
  Fixture f([](int fd, const Command&) {
    Message junk;
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(0x5a + 31 * i);
    send_raw(fd, junk.data(), junk.size());
  });
  f.expect_read_fails("sent a malformed reply to a 4-byte read of region 0 offset 0x8 (nonzero padding)");
}

TEST(IoregionfdFailures, ServerRepliesShort) {
  Fixture f([](int fd, const Command& c) {
    Message m = encode(good_reply(c));
    send_raw(fd, m.data(), 16);
  });
  f.expect_read_fails("sent a 16-byte reply to a 4-byte read");
}

TEST(IoregionfdFailures, ServerRepliesLong) {
  Fixture f([](int fd, const Command& c) {
    uint8_t big[40] = {};
    Message m = encode(good_reply(c));
    std::memcpy(big, m.data(), m.size());
    send_raw(fd, big, sizeof big);
  });
  f.expect_read_fails("sent a 40-byte reply");
}

TEST(IoregionfdFailures, ServerRepliesWithAnotherRequestsUserData) {
  Fixture f([](int fd, const Command& c) {
    Message m = encode(Reply{1, c.user_data - 1});  // e.g. a stale reply
    send_raw(fd, m.data(), m.size());
  });
  f.expect_read_fails("with the reply to another request");
}

TEST(IoregionfdFailures, ServerRepliesTwiceToOneRequest) {
  Fixture f([](int fd, const Command& c) {
    Message m = encode(good_reply(c, 0x12));
    send_raw(fd, m.data(), m.size());
    send_raw(fd, m.data(), m.size());  // the duplicate answers the next request
  });
  EXPECT_EQ(f.proxy->read(0, 0x8, 4), 0x12u);
  f.expect_read_fails("with the reply to another request");
}

TEST(IoregionfdFailures, ServerRepliesWiderThanTheAccess) {
  Fixture f([](int fd, const Command& c) {
    Message m = encode(good_reply(c, 0x1ffffffff));
    send_raw(fd, m.data(), m.size());
  });
  f.expect_read_fails("with 0x1ffffffff, wider than the access");
}

TEST(IoregionfdFailures, ServerAcknowledgesAWriteWithData) {
  Fixture f([](int fd, const Command& c) {
    Message m = encode(good_reply(c, 5));
    send_raw(fd, m.data(), m.size());
  });
  f.proxy->write(1, 0x4, 2, 0x77);
  auto messages = f.failures.take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find("acknowledged a 2-byte write of region 1 offset 0x4 with data 0x5"), std::string::npos)
      << messages[0];
}

TEST(IoregionfdFailures, PostedWritesToAServerThatStoppedReading) {
  // The server reads nothing: the socket buffer fills and the next send times out instead of blocking for ever.
  auto [vmm, dev] = socket_pair();
  FailureLog failures;
  Options o;
  o.posted = true;
  o.timeout = 100ms;
  o.on_failure = failures.handler();
  IoregionfdProxy proxy("pci-testdev", std::move(vmm), o);
  for (int i = 0; i < 1'000'000 && !proxy.failed(); ++i) proxy.write(0, 0, 4, 1);
  auto messages = failures.take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find("did not accept a 4-byte write of region 0 offset 0x0 within 100 ms"), std::string::npos)
      << messages[0];
}

TEST(IoregionfdFailures, WithoutAHandlerTheFailureIsLoggedAndNothingCrashes) {
  auto [vmm, dev] = socket_pair();
  Options o;
  o.timeout = 50ms;
  IoregionfdProxy proxy("pci-testdev", std::move(vmm), o);
  dev.reset();
  EXPECT_EQ(proxy.read(0, 0, 1), 0xffu);
  EXPECT_TRUE(proxy.failed());
}

TEST(IoregionfdFailures, ProxyCannotCarryImpossibleAccesses) {
  auto [vmm, dev] = socket_pair();
  FailureLog failures;
  Options o;
  o.timeout = 50ms;
  o.on_failure = failures.handler();
  IoregionfdProxy proxy("pci-testdev", std::move(vmm), o);
  EXPECT_EQ(proxy.read(kMaxRegion + 1, 0, 4), 0xffffffffu);  // a region the user data cannot name
  EXPECT_EQ(proxy.read(0, 0, 3), 0xffffffu);
  proxy.write(0, 0, 16, 0);
  EXPECT_FALSE(proxy.failed());  // refused locally; the channel is fine
  EXPECT_TRUE(failures.take().empty());
}

// The server's side: it answers a VMM that misbehaves by ending the session.
ServerResult serve_one_message(std::span<const uint8_t> bytes) {
  auto [vmm, dev] = socket_pair();
  auto device = std::make_shared<FakeRegisters>();
  send_raw(vmm.get(), bytes.data(), bytes.size());
  vmm.reset();  // EOF after it
  Server server(device, std::move(dev), {});
  return server.run();
}

TEST(IoregionfdFailures, ServerEndsTheSessionOnAMalformedCommand) {
  Message bad = encode(Command{Opcode::read, 4, true, 0, 0, 0});
  bad[0] = 9;
  ServerResult r = serve_one_message(bad);
  EXPECT_FALSE(r.clean);
  EXPECT_NE(r.error.find("malformed command #1 (unknown command, 32 bytes)"), std::string::npos) << r.error;

  uint8_t longer[48] = {};
  Message good = encode(Command{Opcode::read, 4, true, 0, 0, 0});
  std::memcpy(longer, good.data(), good.size());
  r = serve_one_message(longer);
  EXPECT_FALSE(r.clean);
  EXPECT_NE(r.error.find("long message, 48 bytes"), std::string::npos) << r.error;

  r = serve_one_message(std::span<const uint8_t>(good.data(), 20));
  EXPECT_FALSE(r.clean);
  EXPECT_NE(r.error.find("short message, 20 bytes"), std::string::npos) << r.error;
}

TEST(IoregionfdFailures, ServerEndsCleanlyOnEof) {
  Message posted = encode(Command{Opcode::write, 4, false, 0, 0, 3});
  ServerResult r = serve_one_message(posted);
  EXPECT_TRUE(r.clean) << r.error;
  EXPECT_EQ(r.commands, 1u);
}

}  // namespace
}  // namespace iovmm::dispatch::ioregionfd
