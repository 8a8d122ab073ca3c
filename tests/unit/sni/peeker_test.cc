// Classification of the first bytes, and the Peeker's incremental contract.
#include <gtest/gtest.h>

#include <string>

#include "sni/sni.h"
#include "wire_util.h"

namespace tollgate::sni {
namespace {

using wire::Bytes;
using wire::clientHello;
using wire::HelloSpec;
using wire::peekWhole;
using wire::toBytes;

struct ClassifyCase {
  std::string label;
  Bytes bytes;
  Status status;
  Protocol protocol;
  std::string reason = "";
};

void PrintTo(const ClassifyCase& c, std::ostream* os) { *os << c.label; }

class ClassifyTest : public ::testing::TestWithParam<ClassifyCase> {};

TEST_P(ClassifyTest, Table) {
  const ClassifyCase& c = GetParam();
  PeekResult r = peekWhole(c.bytes);
  EXPECT_EQ(r.status, c.status) << ::testing::PrintToString(r);
  EXPECT_EQ(r.protocol, c.protocol) << ::testing::PrintToString(r);
  EXPECT_EQ(r.reason, c.reason);
  EXPECT_EQ(r.consumed, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClassifyTest,
    ::testing::Values(
        ClassifyCase{"nothing", {}, Status::NeedMore, Protocol::Unknown},
        ClassifyCase{"tls_first_byte", {0x16}, Status::NeedMore, Protocol::Tls},
        ClassifyCase{"tls_header", {0x16, 0x03, 0x01, 0x02, 0x00}, Status::NeedMore, Protocol::Tls},
        ClassifyCase{"method_prefix", toBytes("GE"), Status::NeedMore, Protocol::Unknown},
        ClassifyCase{"method_sp", toBytes("GET "), Status::NeedMore, Protocol::Http},
        ClassifyCase{"long_method", toBytes("UPDATEREDIRECTREF /"), Status::NeedMore,
                     Protocol::Http},
        ClassifyCase{"method_too_long", toBytes("ABCDEFGHIJKLMNOPQRSTU "), Status::Done,
                     Protocol::Opaque},
        ClassifyCase{"method_20_waits", toBytes("ABCDEFGHIJKLMNOPQRST"), Status::NeedMore,
                     Protocol::Unknown},
        ClassifyCase{"lowercase_method", toBytes("get / HTTP/1.1\r\n"), Status::Done,
                     Protocol::Opaque},
        ClassifyCase{"ssh_banner", toBytes("SSH-2.0-OpenSSH_9.2\r\n"), Status::Done,
                     Protocol::Opaque},
        ClassifyCase{"smtp_like", toBytes("EHLO x\r\n"), Status::NeedMore, Protocol::Http},
        ClassifyCase{"leading_space", toBytes(" GET /"), Status::Done, Protocol::Opaque},
        ClassifyCase{"leading_crlf", toBytes("\r\nGET / HTTP/1.1\r\n"), Status::Done,
                     Protocol::Opaque},
        ClassifyCase{"digit", toBytes("0123"), Status::Done, Protocol::Opaque},
        ClassifyCase{"nul", {0x00}, Status::Done, Protocol::Opaque},
        ClassifyCase{"tls_alert_record", {0x15, 0x03, 0x03}, Status::Done, Protocol::Opaque},
        ClassifyCase{"connect", toBytes("CONNECT "), Status::Invalid, Protocol::Http,
                     "http_connect_unsupported"},
        ClassifyCase{"connectx_is_just_a_method", toBytes("CONNECTX "), Status::NeedMore,
                     Protocol::Http},
        // SSL 2.0 CLIENT-HELLO: 2-byte header, msg_type 1, version 0x0002 or 0x03xx.
        ClassifyCase{"sslv2_compat_hello",
                     {0x80, 0x2e, 0x01, 0x03, 0x01},
                     Status::Invalid,
                     Protocol::Tls,
                     "tls_sslv2_hello"},
        ClassifyCase{"sslv2_hello",
                     {0x80, 0x2e, 0x01, 0x00, 0x02},
                     Status::Invalid,
                     Protocol::Tls,
                     "tls_sslv2_hello"},
        ClassifyCase{"high_bit_waits", {0x80, 0x2e}, Status::NeedMore, Protocol::Unknown},
        ClassifyCase{
            "high_bit_type_waits", {0x80, 0x2e, 0x01}, Status::NeedMore, Protocol::Unknown},
        ClassifyCase{
            "high_bit_not_hello", {0x80, 0x2e, 0x02, 0x03}, Status::Done, Protocol::Opaque},
        ClassifyCase{
            "high_bit_other_version", {0x80, 0x2e, 0x01, 0x04}, Status::Done, Protocol::Opaque},
        ClassifyCase{"binary", {0xff, 0xff, 0xff, 0xff}, Status::Done, Protocol::Opaque}),
    [](const ::testing::TestParamInfo<ClassifyCase>& info) { return info.param.label; });

TEST(PeekerTest, ResultIsFinalOnceDecided) {
  Peeker p;
  const Bytes ssh = toBytes("SSH-2.0-x\r\n");
  PeekResult first = p.update(ssh);
  ASSERT_EQ(first.status, Status::Done);
  Bytes more = wire::concat(ssh, toBytes("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(p.update(more), first);
  EXPECT_EQ(p.update({}), first);
}

TEST(PeekerTest, FewerBytesThanBeforeIsMisuse) {
  Peeker p;
  const Bytes wire = clientHello(HelloSpec{});
  ASSERT_EQ(p.update(std::span(wire).first(100)).status, Status::NeedMore);
  PeekResult r = p.update(std::span(wire).first(50));
  EXPECT_EQ(r.status, Status::Invalid);
  EXPECT_EQ(r.protocol, Protocol::Tls);
  EXPECT_EQ(r.reason, "peeker_misuse");
  EXPECT_EQ(p.update(wire), r);
}

TEST(PeekerTest, SameBytesAgainChangeNothing) {
  Peeker p;
  const Bytes wire = clientHello(HelloSpec{}, 64);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.update(std::span(wire).first(130)).status, Status::NeedMore);
  }
  EXPECT_EQ(p.update(wire), peekWhole(wire));
}

// The caller may stop reading at kMaxPeekBytes: by then there is a decision.
TEST(PeekerTest, NeverNeedsMoreThanTheCap) {
  std::vector<Bytes> inputs;
  inputs.push_back(toBytes("GET /" + std::string(kMaxPeekBytes, 'a')));
  inputs.push_back(toBytes("GET / HTTP/1.1\r\n" + std::string(kMaxPeekBytes, 'a')));
  Bytes records;
  while (records.size() < kMaxPeekBytes) {
    records = wire::concat(records, Bytes{22, 3, 1, 0x40, 0x00});
    records.resize(records.size() + 0x4000, 0x01);
  }
  // A client_hello announcing kMaxPeekBytes - 4 bytes: the message would fit,
  // but not with the headers of the records carrying it.
  records[5] = 1;
  records[6] = 0x00;
  records[7] = 0x7f;
  records[8] = 0xfc;
  inputs.push_back(records);
  HelloSpec s;
  s.padding = 6000;
  inputs.push_back(clientHello(s, 1));  // 1-byte records
  for (const Bytes& in : inputs) {
    ASSERT_GE(in.size(), kMaxPeekBytes);
    EXPECT_NE(peekWhole(std::span(in).first(kMaxPeekBytes)).status, Status::NeedMore);
    EXPECT_NE(wire::peekInChunks(std::span(in).first(kMaxPeekBytes), 1).status, Status::NeedMore);
  }
}

}  // namespace
}  // namespace tollgate::sni
