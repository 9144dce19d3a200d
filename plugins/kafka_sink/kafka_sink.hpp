// kafka_sink: writes records to a Kafka topic in the wire format of DESIGN.md (JSON value,
// key = target, headers content-type and webmon-schema) with an idempotent producer (acks=all).
//
// Contract: a batch's Ack is resolved `delivered` only once the broker confirmed every record
// of it; `rejected` when a record can never be stored (e.g. larger than the broker accepts);
// `retryable` when records were not confirmed before shutdown. Messages never time out while
// Kafka is unreachable (message.timeout.ms = 0 by default): the local queue fills and write()
// blocks, which is backpressure upstream. flush() waits for confirmations up to its timeout,
// then purges what is left and resolves it retryable.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "webmon/kafka/client.hpp"
#include "webmon/kafka/connection.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::kafka_sink {

inline constexpr sdk::OptionSpec kOptions[] = {
    WEBMON_KAFKA_CONNECTION_OPTIONS,
    {"topic", sdk::OptionType::string, nullptr, true, "topic the records are written to"},
    {"compression", sdk::OptionType::string, "none", false,
     "compression of produced batches: none, gzip, snappy, lz4 or zstd"},
    {"linger", sdk::OptionType::duration, "5ms", false,
     "how long the producer waits to fill a request (librdkafka linger.ms)"},
    {"queue_max_records", sdk::OptionType::integer, "10000", false,
     "records held locally while waiting for the broker; when full, writes block "
     "(backpressure)"},
    {"queue_max_size", sdk::OptionType::size, "256MiB", false,
     "bytes held locally while waiting for the broker; when full, writes block"},
    {"delivery_timeout", sdk::OptionType::duration, "0", false,
     "give up on a record not confirmed in this time and report its batch retryable; "
     "0 = never (keep retrying while Kafka is unreachable)"},
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
  static std::int32_t partition_cb(const rd_kafka_topic_t* rkt, const void* key,
                                   std::size_t keylen, std::int32_t partition_cnt,
                                   void* rkt_opaque, void* msg_opaque);
  /// Fills order_ with the batch's record indexes grouped by the partition each will go to
  /// (stable: records of one partition, hence of one key, keep their order), or in batch order
  /// while the partition count is not known.
  void group_by_partition(const std::vector<sdk::Record>& records);
  void finish_one(BatchState* state, sdk::AckStatus status);
  void stop_poller();

  kafka::Connection conn_;
  std::string topic_;
  kafka::ConfPtr conf_;
  kafka::ClientHooks hooks_;
  kafka::ClientPtr rk_;
  kafka::TopicPtr rkt_;
  std::thread poller_;
  std::atomic<bool> poller_stop_{false};
  std::atomic<std::int64_t> outstanding_batches_{0};
  /// The topic's partition count as librdkafka last saw it (set by partition_cb; 0 = not yet
  /// known, or grouping is off because the librdkafka map chose another partitioner).
  std::atomic<std::int32_t> partition_count_{0};
  std::vector<std::uint32_t> order_;        // produce order of the batch's records
  std::vector<std::int32_t> partition_of_;  // per record, while grouping
  std::vector<std::uint32_t> bucket_;       // counting sort
  std::vector<std::size_t> ends_;     // end of each record's value in BatchState::values
  std::size_t value_size_hint_ = 512;  // average value size of the last batch
  sdk::Counter* rejected_records_ = nullptr;
  sdk::Counter* failed_records_ = nullptr;
  sdk::Counter* queue_full_waits_ = nullptr;
};

}  // namespace webmon::plugins::kafka_sink
