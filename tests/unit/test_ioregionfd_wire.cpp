// The ioregionfd wire format: exact byte layout (the KVM RFC's), round trips, and every malformed field refused.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "dispatch/ioregionfd/wire.h"
#include "io/device.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

Message valid_command_bytes() {
  return encode(Command{Opcode::write, 4, true, make_user_data(1, 42), 0x10, 0xdeadbeef});
}

TEST(IoregionfdWire, CommandHasTheRfcByteLayout) {
  Message m = encode(Command{Opcode::write, 8, true, 0x0102030405060708, 0x1122334455667788, 0xa1a2a3a4a5a6a7a8});
  std::vector<uint8_t> expected = {
      0x01, 0x13, 0, 0, 0, 0, 0, 0,                    // cmd write; size exponent 3 | response bit 4; padding
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // user data
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // offset
      0xa8, 0xa7, 0xa6, 0xa5, 0xa4, 0xa3, 0xa2, 0xa1,  // data
  };
  EXPECT_EQ(std::vector<uint8_t>(m.begin(), m.end()), expected);
  Message posted_byte_read = encode(Command{Opcode::read, 1, false, 0, 0, 0});
  EXPECT_EQ(posted_byte_read[0], 0x00);
  EXPECT_EQ(posted_byte_read[1], 0x00);
}

TEST(IoregionfdWire, ReplyEchoesUserDataAfterTheData) {
  Message m = encode(Reply{0x1122334455667788, 0x0102030405060708});
  EXPECT_EQ(m[0], 0x88);
  EXPECT_EQ(m[8], 0x08);
  for (size_t i = 16; i < kMessageSize; ++i) EXPECT_EQ(m[i], 0) << i;
}

TEST(IoregionfdWire, CommandsRoundTripForEveryOpSizeAndFlag) {
  for (Opcode op : {Opcode::read, Opcode::write}) {
    for (unsigned size : {1u, 2u, 4u, 8u}) {
      for (bool response : {false, true}) {
        Command c{op, size, response, make_user_data(5, 0xabcdef), 0xfff8,
                  op == Opcode::write ? 0x8877665544332211ull & io::size_mask(size) : 0};
        Message m = encode(c);
        Command back;
        ASSERT_EQ(decode(m, back), WireError::ok);
        EXPECT_EQ(back, c);
        EXPECT_EQ(encode(back), m);
      }
    }
  }
  Reply r{0x55, 0x66}, back;
  ASSERT_EQ(decode(encode(r), back), WireError::ok);
  EXPECT_EQ(back, r);
}

TEST(IoregionfdWire, RefusesWrongLengths) {
  Message m = valid_command_bytes();
  Command c;
  Reply r;
  EXPECT_EQ(decode(std::span<const uint8_t>(m.data(), 31), c), WireError::short_message);
  EXPECT_EQ(decode(std::span<const uint8_t>(m.data(), 0), c), WireError::short_message);
  std::vector<uint8_t> longer(m.begin(), m.end());
  longer.push_back(0);
  EXPECT_EQ(decode(longer, c), WireError::long_message);
  EXPECT_EQ(decode(std::span<const uint8_t>(m.data(), 8), r), WireError::short_message);
  EXPECT_EQ(decode(longer, r), WireError::long_message);
}

TEST(IoregionfdWire, RefusesUnknownCommands) {
  for (unsigned cmd = 2; cmd < 256; ++cmd) {
    Message m = valid_command_bytes();
    m[0] = static_cast<uint8_t>(cmd);
    Command c;
    EXPECT_EQ(decode(m, c), WireError::bad_command) << cmd;
  }
}

TEST(IoregionfdWire, RefusesSizeExponentsAboveThree) {
  for (uint8_t exponent = 4; exponent < 16; ++exponent) {
    Message m = valid_command_bytes();
    m[1] = static_cast<uint8_t>((m[1] & ~kSizeExponentMask) | exponent);
    Command c;
    EXPECT_EQ(decode(m, c), WireError::bad_size) << int{exponent};
  }
}

TEST(IoregionfdWire, RefusesReservedInfoBits) {
  for (uint8_t bit : {0x20, 0x40, 0x80}) {
    Message m = valid_command_bytes();
    m[1] |= bit;
    Command c;
    EXPECT_EQ(decode(m, c), WireError::reserved_bits) << int{bit};
  }
}

TEST(IoregionfdWire, RefusesNonzeroPadding) {
  for (size_t i = 2; i < 8; ++i) {
    Message m = valid_command_bytes();
    m[i] = 1;
    Command c;
    EXPECT_EQ(decode(m, c), WireError::nonzero_padding) << i;
  }
  for (size_t i = 16; i < kMessageSize; ++i) {
    Message m = encode(Reply{1, 2});
    m[i] = 0x80;
    Reply r;
    EXPECT_EQ(decode(m, r), WireError::nonzero_padding) << i;
  }
}

TEST(IoregionfdWire, RefusesDataWiderThanTheAccessAndReadsCarryingData) {
  Message m = encode(Command{Opcode::write, 1, true, 0, 0, 0xff});
  m[25] = 1;  // data 0x1ff in a 1-byte write
  Command c;
  EXPECT_EQ(decode(m, c), WireError::data_too_wide);
  Message r = encode(Command{Opcode::read, 8, true, 0, 0, 0});
  r[31] = 1;
  EXPECT_EQ(decode(r, c), WireError::data_too_wide);
}

TEST(IoregionfdWire, AFailedDecodeLeavesTheOutputAlone) {
  Message m = valid_command_bytes();
  m[0] = 7;
  Command c{Opcode::read, 2, false, 9, 9, 0};
  Command before = c;
  EXPECT_NE(decode(m, c), WireError::ok);
  EXPECT_EQ(c, before);
}

TEST(IoregionfdWire, EncodeRefusesWhatCannotBeSent) {
  EXPECT_THROW((void)encode(Command{Opcode::read, 3, true, 0, 0, 0}), std::invalid_argument);
  EXPECT_THROW((void)encode(Command{Opcode::write, 2, true, 0, 0, 0x10000}), std::invalid_argument);
  EXPECT_THROW((void)encode(Command{Opcode::read, 4, true, 0, 0, 1}), std::invalid_argument);
}

TEST(IoregionfdWire, UserDataCarriesRegionAndSequence) {
  uint64_t ud = make_user_data(5, 0x00ffffffffffffff);
  EXPECT_EQ(region_of(ud), 5u);
  EXPECT_EQ(ud & kSequenceMask, 0x00ffffffffffffffu);
  EXPECT_EQ(region_of(make_user_data(0, ~0ull)), 0u);  // a sequence number never spills into the region
  EXPECT_EQ(region_of(make_user_data(kMemoryProbeRegion, 1)), kMemoryProbeRegion);
}

TEST(IoregionfdWire, PageChecksumSeesEveryByte) {
  std::vector<uint8_t> page(kProbePageSize, 0);
  uint64_t zero = page_checksum(page);
  page[4095] = 1;
  EXPECT_NE(page_checksum(page), zero);
  EXPECT_EQ(page_checksum({}), 0xcbf29ce484222325u);  // FNV-1a's offset basis
}

}  // namespace
}  // namespace iovmm::dispatch::ioregionfd
