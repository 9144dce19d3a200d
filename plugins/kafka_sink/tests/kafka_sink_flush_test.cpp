// kafka_sink's flush resolves every outstanding Ack before it returns (no broker needed: the
// brokers are an address nothing listens on, so no record is ever confirmed).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "kafka_sink.hpp"
#include "webmon/sdk/testing.hpp"

namespace webmon::plugins::kafka_sink {
namespace {

using namespace std::chrono_literals;
using sdk::AckStatus;
namespace wt = sdk::testing;

/// A loopback port nothing listens on (bound, then closed).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

sdk::Batch batch(int n, std::uint64_t token) {
  sdk::Batch b;
  b.token = token;
  for (int i = 0; i < n; ++i) {
    sdk::Record r;
    r.kind = "http_check";
    r.id = "01a2357c-8b26-7bec-9391-00000000000" + std::to_string(i % 10);
    r.add("target", "t" + std::to_string(i));
    b.records.push_back(std::move(r));
  }
  return b;
}

class KafkaSinkFlush : public ::testing::TestWithParam<int> {};

TEST_P(KafkaSinkFlush, EveryUnconfirmedBatchIsResolvedRetryableWhenFlushReturns) {
  wt::FakeContext ctx("kafka");
  KafkaSink sink(wt::config({{"brokers", "127.0.0.1:" + std::to_string(closed_port())},
                             {"topic", "unreachable"},
                             {"connect_timeout", "100ms"}}),
                 ctx);
  ASSERT_TRUE(sink.start(ctx).is_ok()) << ctx.all_logs();
  wt::AckLog acks;
  const sdk::Batch a = batch(3, 1);
  const sdk::Batch b = batch(5, 2);
  ASSERT_TRUE(sink.write(a, acks.make()).is_ok());
  ASSERT_TRUE(sink.write(b, acks.make()).is_ok());
  const sdk::Status s = sink.flush(std::chrono::milliseconds(GetParam()));
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("8 records not confirmed by Kafka were purged and reported retryable"),
            std::string::npos)
      << s.message();
  // Resolved by the time flush returned: with a disk buffer the agent keeps these records for
  // the next start, with the memory buffer it reports them lost.
  EXPECT_EQ(acks.count(AckStatus::retryable), 2);
  EXPECT_EQ(acks.total(), 2);
  EXPECT_EQ(ctx.count("retryable_records"), 8U);
}

INSTANTIATE_TEST_SUITE_P(Timeouts, KafkaSinkFlush, ::testing::Values(0, 300));

}  // namespace
}  // namespace webmon::plugins::kafka_sink
