// kafka_sink: writes records to a Kafka topic in the wire format (docs/wire-format.md: JSON
// value; key = the kind's declared key field or the `key_field` option; headers content-type,
// webmon-schema, and the kind's declaration in webmon-kind / webmon-kind-version /
// webmon-fields) with an idempotent producer (acks=all).
//
// Contract: the host owns buffering, batching and retries; the sink writes the batch it is
// given and resolves its Ack from the delivery reports: `delivered` once the broker confirmed
// every record of it; `rejected` when a record can never be stored (e.g. larger than the broker
// accepts); `retryable` when records were not confirmed (delivery_timeout, or purged at
// shutdown). The only wait is librdkafka's own: while its local queue is full, producing
// blocks (RD_KAFKA_MSG_F_BLOCK) until delivery reports make room. flush() waits for
// confirmations up to its timeout, then purges what is left, which resolves as retryable:
// every Ack is resolved when flush() returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "webmon/kafka/client.hpp"
#include "webmon/kafka/connection.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::kafka_sink {

/// The options as written (filled by sdk::load_options from kOptions).
struct Options {
  kafka::Connection connection;
  std::string topic;
  std::string compression;
  std::chrono::milliseconds linger{};
  std::int64_t queue_max_records = 0;
  std::uint64_t queue_max_size = 0;
  std::chrono::milliseconds delivery_timeout{};
  std::optional<std::string> key_field;
};

// Declared once: the host checks types, bounds and choices and fills in the defaults;
// load_options() fills Options; the constructor checks only what the table cannot express.
inline constexpr sdk::OptionSpec kOptions[] = {
    WEBMON_KAFKA_CONNECTION_OPTIONS(Options),
    {.name = "topic",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "topic the records are written to",
     .assign = sdk::bind<&Options::topic>()},
    {.name = "compression",
     .type = sdk::OptionType::string,
     .default_value = "none",
     .required = false,
     .description = "compression of produced batches: none, gzip, snappy, lz4 or zstd (lower or "
                    "upper case)",
     .choices = "none|gzip|snappy|lz4|zstd|NONE|GZIP|SNAPPY|LZ4|ZSTD",
     .assign = sdk::bind<&Options::compression>()},
    {.name = "linger",
     .type = sdk::OptionType::duration,
     .default_value = "5ms",
     .required = false,
     .description = "how long the producer waits to fill a request (librdkafka linger.ms)",
     .max = "15m",
     .assign = sdk::bind<&Options::linger>()},
    {.name = "queue_max_records",
     .type = sdk::OptionType::integer,
     .default_value = "10000",
     .required = false,
     .description = "records held locally while waiting for the broker; when full, writes block "
                    "(backpressure)",
     .min = "1",
     .max = "10000000",
     .assign = sdk::bind<&Options::queue_max_records>()},
    {.name = "queue_max_size",
     .type = sdk::OptionType::size,
     .default_value = "256MiB",
     .required = false,
     .description = "bytes held locally while waiting for the broker; when full, writes block",
     .min = "1KiB",
     .max = "2147483647KiB",
     .assign = sdk::bind<&Options::queue_max_size>()},
    {.name = "delivery_timeout",
     .type = sdk::OptionType::duration,
     .default_value = "0",
     .required = false,
     .description = "give up on a record not confirmed in this time and report its batch "
                    "retryable; 0 = never (keep retrying while Kafka is unreachable)",
     .max = "2147483647ms",
     .assign = sdk::bind<&Options::delivery_timeout>()},
    {.name = "key_field",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "field whose value is the message key, for every kind; default: each kind's "
                    "declared key field (the target); \"\" = no key",
     .assign = sdk::bind<&Options::key_field>()},
};

class KafkaSink final : public sdk::Sink {
 public:
  KafkaSink(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  struct BatchState;

 protected:
  sdk::Status on_start() override;
  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override;
  sdk::Status on_flush(std::chrono::milliseconds timeout) override;

 private:
  static void dr_msg_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static std::int32_t partition_cb(const rd_kafka_topic_t* rkt, const void* key, std::size_t keylen,
                                   std::int32_t partition_cnt, void* rkt_opaque, void* msg_opaque);
  /// Fills order_ with the batch's record indexes grouped by the partition each will go to
  /// (stable: records of one partition, hence of one key, keep their order), or in batch order
  /// while the partition count is not known.
  void group_by_partition(const std::vector<sdk::Record>& records);
  void finish_one(BatchState* state, sdk::AckStatus status);
  void stop_poller();

  /// What a kind puts on the wire, built once per kind from its declaration (find_kind) and
  /// rebuilt when the host's declaration changes (a newer version registered).
  struct KindWire {
    const sdk::KindSpec* spec = nullptr;  // the host's declaration it was built from
    std::string version;                  // webmon-kind-version ("" = undeclared kind)
    std::string fields;                   // webmon-fields ("" = undeclared kind)
    std::string hash;                     // the value's kind_hash ("" = undeclared kind)
    std::string key_field;                // "" = no key
    std::uint64_t checked = 0;            // the batch it was last checked against find_kind
  };
  /// The wire facts of a record's kind (looked up with find_kind once per kind per batch).
  const KindWire& kind_wire(const std::string& kind);

  kafka::Connection conn_;
  std::string topic_;
  kafka::ConfPtr conf_;
  kafka::ClientHooks hooks_;
  kafka::ClientPtr rk_;
  kafka::TopicPtr rkt_;
  std::thread poller_;
  std::atomic<bool> poller_stop_{false};
  std::atomic<std::int64_t> outstanding_batches_{0};
  std::atomic<std::int64_t> unconfirmed_records_{0};  // handed to librdkafka, no report yet
  /// The topic's partition count as librdkafka last saw it (set by partition_cb; 0 = not yet
  /// known, or grouping is off because the librdkafka map chose another partitioner).
  std::atomic<std::int32_t> partition_count_{0};
  bool key_override_ = false;  // key_field option set
  std::string key_field_;      // its value
  std::unordered_map<std::string, KindWire> kinds_;
  const std::string* last_kind_name_ = nullptr;
  const KindWire* last_kind_ = nullptr;
  std::uint64_t batch_seq_ = 0;
  std::vector<const std::string*> keys_;  // per record of the batch: its key or nullptr
  std::vector<const KindWire*> wires_;    // per record of the batch
  sdk::LogLimiter limiter_;
  std::vector<std::uint32_t> order_;        // produce order of the batch's records
  std::vector<std::int32_t> partition_of_;  // per record, while grouping
  std::vector<std::uint32_t> bucket_;       // counting sort
  std::vector<std::size_t> ends_;           // end of each record's value in BatchState::values
  std::size_t value_size_hint_ = 512;       // average value size of the last batch
  sdk::Counter* rejected_records_ = nullptr;
  sdk::Counter* failed_records_ = nullptr;
  sdk::Counter* queue_full_waits_ = nullptr;
};

}  // namespace webmon::plugins::kafka_sink
