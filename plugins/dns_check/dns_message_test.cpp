// dns_message: queries are well-formed; replies (hand-built, with compression, and broken
// ones) parse into the answers a user sees, and malformed input never reads out of bounds.
#include "dns_message.hpp"

#include <gtest/gtest.h>

#include <random>

namespace webmon::plugins::dns_check {
namespace {

using Bytes = std::vector<std::uint8_t>;

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8U));
  b.push_back(static_cast<std::uint8_t>(v & 0xFFU));
}
void put32(Bytes& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v >> 16U));
  put16(b, static_cast<std::uint16_t>(v & 0xFFFFU));
}
void name(Bytes& b, const std::string& n) {
  std::size_t start = 0;
  while (start < n.size()) {
    const auto end = std::min(n.find('.', start), n.size());
    b.push_back(static_cast<std::uint8_t>(end - start));
    b.insert(b.end(), n.begin() + static_cast<long>(start), n.begin() + static_cast<long>(end));
    start = end + 1;
  }
  b.push_back(0);
}

// A reply header + the question for `q`/`type`; the question name starts at offset 12.
Bytes reply_head(std::uint16_t id, std::uint16_t flags, std::uint16_t an, const std::string& q,
                 RecordType type) {
  Bytes b;
  put16(b, id);
  put16(b, flags);
  put16(b, 1);
  put16(b, an);
  put16(b, 0);
  put16(b, 0);
  name(b, q);
  put16(b, static_cast<std::uint16_t>(type));
  put16(b, 1);
  return b;
}
void rr_head(Bytes& b, RecordType type, std::uint32_t ttl, std::uint16_t len) {
  b.push_back(0xC0);  // pointer to the question name
  b.push_back(12);
  put16(b, static_cast<std::uint16_t>(type));
  put16(b, 1);
  put32(b, ttl);
  put16(b, len);
}

TEST(DnsMessage, QueryLayout) {
  const auto q = build_query(0xBEEF, "www.example.com.", RecordType::aaaa, true);
  ASSERT_GE(q.size(), 12U);
  EXPECT_EQ(q[0], 0xBE);
  EXPECT_EQ(q[1], 0xEF);
  EXPECT_EQ(q[2], 0x01);  // RD
  EXPECT_EQ(q[5], 1);     // one question
  EXPECT_EQ(q[11], 1);    // one additional (OPT)
  const Bytes qname = {3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  EXPECT_TRUE(std::equal(qname.begin(), qname.end(), q.begin() + 12));
  EXPECT_EQ(q[12 + qname.size() + 1], 28);                     // AAAA
  EXPECT_EQ(build_query(1, "a", RecordType::a, false)[2], 0);  // no RD
}

TEST(DnsMessage, ParsesEveryTypeWithCompression) {
  // A
  Bytes a = reply_head(7, 0x8580, 2, "x.test", RecordType::a);
  rr_head(a, RecordType::a, 300, 4);
  a.insert(a.end(), {10, 0, 0, 1});
  rr_head(a, RecordType::a, 60, 4);
  a.insert(a.end(), {10, 0, 0, 2});
  std::string err;
  auto r = parse_reply(a.data(), a.size(), "X.test.", RecordType::a, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->id, 7);
  EXPECT_TRUE(r->authoritative);
  EXPECT_FALSE(r->truncated);
  ASSERT_EQ(r->answers.size(), 2U);
  EXPECT_EQ(r->answers[0].text, "10.0.0.1");
  EXPECT_EQ(r->answers[1].ttl, 60U);
  // AAAA
  Bytes six = reply_head(1, 0x8180, 1, "x.test", RecordType::aaaa);
  rr_head(six, RecordType::aaaa, 1, 16);
  for (int i = 0; i < 15; ++i) {
    six.push_back(i == 0 ? 0xfd : 0);
  }
  six.push_back(2);
  r = parse_reply(six.data(), six.size(), "x.test", RecordType::aaaa, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->answers.at(0).text, "fd00::2");
  // MX with a compressed exchange name ("mail" + pointer to x.test)
  Bytes mx = reply_head(1, 0x8180, 1, "x.test", RecordType::mx);
  rr_head(mx, RecordType::mx, 1, 2 + 5 + 2);
  put16(mx, 10);
  mx.insert(mx.end(), {4, 'm', 'a', 'i', 'l', 0xC0, 12});
  r = parse_reply(mx.data(), mx.size(), "x.test", RecordType::mx, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->answers.at(0).text, "10 mail.x.test");
  // TXT with two strings
  Bytes txt = reply_head(1, 0x8180, 1, "x.test", RecordType::txt);
  rr_head(txt, RecordType::txt, 1, 3 + 4);
  txt.insert(txt.end(), {2, 'a', 'b', 3, 'c', 'd', 'e'});
  r = parse_reply(txt.data(), txt.size(), "x.test", RecordType::txt, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->answers.at(0).text, "abcde");
  // SOA
  Bytes soa = reply_head(1, 0x8180, 1, "x.test", RecordType::soa);
  Bytes rdata;
  rdata.insert(rdata.end(), {2, 'n', 's', 0xC0, 12, 4, 'r', 'o', 'o', 't', 0xC0, 12});
  for (std::uint32_t v : {2026u, 1200u, 180u, 1209600u, 600u}) {
    put32(rdata, v);
  }
  rr_head(soa, RecordType::soa, 1, static_cast<std::uint16_t>(rdata.size()));
  soa.insert(soa.end(), rdata.begin(), rdata.end());
  r = parse_reply(soa.data(), soa.size(), "x.test", RecordType::soa, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->answers.at(0).text, "ns.x.test root.x.test 2026 1200 180 1209600 600");
  // A query for A answered with a CNAME chain: only the A records count.
  Bytes chain = reply_head(1, 0x8180, 2, "c.test", RecordType::a);
  rr_head(chain, RecordType::cname, 1, 2);
  chain.insert(chain.end(), {0xC0, 12});
  rr_head(chain, RecordType::a, 1, 4);
  chain.insert(chain.end(), {1, 2, 3, 4});
  r = parse_reply(chain.data(), chain.size(), "c.test", RecordType::a, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->answer_records, 2);
  ASSERT_EQ(r->answers.size(), 1U);
  EXPECT_EQ(r->answers[0].text, "1.2.3.4");
}

TEST(DnsMessage, RcodeAndFlags) {
  const Bytes nx = reply_head(3, 0x8383, 0, "nx.test", RecordType::a);  // QR, TC, RD | RA, NXDOMAIN
  std::string err;
  auto r = parse_reply(nx.data(), nx.size(), "nx.test", RecordType::a, err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->rcode, 3);
  EXPECT_EQ(rcode_text(r->rcode), "NXDOMAIN");
  EXPECT_TRUE(r->truncated);  // 0x0200 set in 0x8383
  EXPECT_EQ(rcode_text(12), "RCODE12");
  EXPECT_EQ(parse_rcode("REFUSED"), 5);
  EXPECT_FALSE(parse_rcode("NOPE"));
}

TEST(DnsMessage, RejectsMalformedAndForeignReplies) {
  std::string err;
  const Bytes tiny = {1, 2, 3};
  EXPECT_FALSE(parse_reply(tiny.data(), tiny.size(), "x", RecordType::a, err));
  EXPECT_NE(err.find("shorter"), std::string::npos);
  Bytes query = build_query(1, "x.test", RecordType::a, true);
  EXPECT_FALSE(parse_reply(query.data(), query.size(), "x.test", RecordType::a, err));
  Bytes other = reply_head(1, 0x8180, 0, "y.test", RecordType::a);
  EXPECT_FALSE(parse_reply(other.data(), other.size(), "x.test", RecordType::a, err));
  EXPECT_NE(err.find("another question"), std::string::npos);
  // A pointer loop in an answer name.
  Bytes loop = reply_head(1, 0x8180, 1, "x.test", RecordType::cname);
  const auto at = loop.size();
  rr_head(loop, RecordType::cname, 1, 2);
  loop.push_back(0xC0);
  loop.push_back(static_cast<std::uint8_t>(at + 12));  // points at itself
  EXPECT_FALSE(parse_reply(loop.data(), loop.size(), "x.test", RecordType::cname, err));
  // A record longer than the message.
  Bytes longer = reply_head(1, 0x8180, 1, "x.test", RecordType::a);
  rr_head(longer, RecordType::a, 1, 40);
  longer.insert(longer.end(), {1, 2, 3, 4});
  EXPECT_FALSE(parse_reply(longer.data(), longer.size(), "x.test", RecordType::a, err));
}

TEST(DnsMessage, RandomBytesNeverCrash) {
  const auto seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Bytes base = reply_head(1, 0x8180, 1, "x.test", RecordType::mx);
  rr_head(base, RecordType::mx, 1, 9);
  put16(base, 10);
  base.insert(base.end(), {4, 'm', 'a', 'i', 'l', 0xC0, 12});
  for (int i = 0; i < 20000; ++i) {
    Bytes b = base;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) {
      b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    }
    b.resize(rng() % (b.size() + 1));
    std::string err;
    (void)parse_reply(b.data(), b.size(), "x.test", RecordType::mx, err);
  }
}

TEST(DnsMessage, NamesAndTypes) {
  EXPECT_EQ(check_name("example.com."), "");
  EXPECT_NE(check_name(""), "");
  EXPECT_NE(check_name("a..b"), "");
  EXPECT_NE(check_name(std::string(64, 'a') + ".com"), "");
  EXPECT_EQ(parse_record_type("aaaa"), RecordType::aaaa);
  EXPECT_FALSE(parse_record_type("SRV"));
}

}  // namespace
}  // namespace webmon::plugins::dns_check
