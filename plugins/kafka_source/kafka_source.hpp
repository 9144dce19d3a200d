// kafka_source: consumes wire-format records (DESIGN.md) from Kafka topics in a consumer group
// and emits them as batches, at-least-once.
//
// Contract:
//  * An offset is committed only when every record before it in its partition was
//    acknowledged `delivered` by all sinks, or was written to the dead-letter topic (DLQ) and
//    confirmed by the broker. Commits happen every `commit_interval`, on rebalance (for the
//    revoked partitions, after waiting up to `drain_timeout` for their records) and on stop.
//  * A batch acknowledged `retryable` is read again: its partitions pause for `retry_backoff`,
//    then seek back to the first record of the batch.
//  * A batch acknowledged `rejected` can never be stored: its records go to the DLQ (reason
//    "rejected by a sink") and are then committed.
//  * Each message is decoded with the declaration its headers carry (webmon-fields), or, without
//    one, with the declaration the agent knows for its kind (wire_kinds.hpp); declarations
//    learned from headers are registered with the agent. No declaration at all, a malformed
//    one, or one that changes a field's type: the message goes to the DLQ with the reason.
//  * Messages that fail decoding or validation, or exceed `max_message_size`, go to the DLQ with
//    headers webmon-dlq-reason / -topic / -partition / -offset (original key, value and
//    headers kept), are counted (dead_lettered) and the partition moves on.
//  * At most `max_in_flight` records are emitted and not yet resolved; past that, consumption
//    waits (and pauses the partitions after a second, so the group session stays alive).
//  * The consumer is a static group member (group.instance.id = <agent name>.<component id>
//    unless configured) with a 10 s session, so a restart takes its partitions back at once.
//    Fenced by another consumer with the same id, it rejoins as a dynamic member (no fatal
//    error, no restart loop).
//  * Offsets are tracked by OffsetTracker (offset_tracker.hpp), under mu_.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "decode_pool.hpp"
#include "fetch_waker.hpp"
#include "offset_tracker.hpp"
#include "webmon/common/wire.hpp"
#include "webmon/kafka/client.hpp"
#include "webmon/kafka/connection.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "wire_kinds.hpp"

namespace webmon::plugins::kafka_source {

/// The kinds of the records it reads are learned from the messages (their declaration travels
/// in a header) at run time.
inline constexpr sdk::KindSpec kKinds[] = {
    sdk::make_any_kind("whatever kinds the topics carry (declared in each message's headers)")};

/// The options as written (filled by sdk::load_options from kOptions).
struct Options {
  kafka::Connection connection;
  std::vector<std::string> topics;
  std::string group_id;
  std::string start_from;
  std::string dead_letter_topic;  ///< "" = <topic>.dlq
  std::int64_t max_in_flight = 0;
  std::int64_t batch_size = 0;
  std::uint64_t prefetch_max_size = 0;
  std::int64_t decode_threads = 0;
  std::chrono::milliseconds batch_timeout{};
  std::chrono::milliseconds commit_interval{};
  std::uint64_t max_message_size = 0;
  std::chrono::milliseconds drain_timeout{};
  std::chrono::milliseconds retry_backoff{};
  bool static_membership = true;
  std::optional<std::string> group_instance_id;
};

// Declared once: the host checks types, bounds and choices and fills in the defaults;
// load_options() fills Options; the constructor checks only what the table cannot express.
inline constexpr sdk::OptionSpec kOptions[] = {
    WEBMON_KAFKA_CONNECTION_OPTIONS(Options),
    {.name = "topics",
     .type = sdk::OptionType::string_list,
     .default_value = nullptr,
     .required = true,
     .description = "topics to consume",
     .min = "1",
     .assign = sdk::bind<&Options::topics>()},
    {.name = "group_id",
     .type = sdk::OptionType::string,
     .default_value = "webmon",
     .required = false,
     .description = "consumer group; committed offsets belong to it",
     .assign = sdk::bind<&Options::group_id>()},
    {.name = "start_from",
     .type = sdk::OptionType::string,
     .default_value = "earliest",
     .required = false,
     .description = "where a group without committed offsets starts: earliest or latest",
     .choices = "earliest|latest",
     .assign = sdk::bind<&Options::start_from>()},
    {.name = "dead_letter_topic",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "topic for messages that cannot be decoded or were rejected by a sink; "
                    "default <topic>.dlq (per consumed topic)",
     .assign = sdk::bind<&Options::dead_letter_topic>()},
    {.name = "max_in_flight",
     .type = sdk::OptionType::integer,
     .default_value = "20000",
     .required = false,
     .description = "records emitted and not yet acknowledged (or waiting for the DLQ) at most",
     .min = "1",
     .max = "10000000",
     .assign = sdk::bind<&Options::max_in_flight>()},
    {.name = "batch_size",
     .type = sdk::OptionType::integer,
     .default_value = "1000",
     .required = false,
     .description = "records per emitted batch at most",
     .min = "1",
     .max = "100000",
     .assign = sdk::bind<&Options::batch_size>()},
    {.name = "prefetch_max_size",
     .type = sdk::OptionType::size,
     .default_value = "64MiB",
     .required = false,
     .description = "messages fetched ahead of the pipeline, at most (librdkafka's local "
                    "queue); the memory a consumer catching up a backlog holds",
     .min = "1MiB",
     .max = "2097151KiB",
     .assign = sdk::bind<&Options::prefetch_max_size>()},
    {.name = "decode_threads",
     .type = sdk::OptionType::integer,
     .default_value = "2",
     .required = false,
     .description = "threads decoding messages into records, the consuming thread included",
     .min = "1",
     .max = "16",
     .assign = sdk::bind<&Options::decode_threads>()},
    {.name = "batch_timeout",
     .type = sdk::OptionType::duration,
     .default_value = "100ms",
     .required = false,
     .description = "how long a partial batch waits for more records before it is emitted",
     .min = "1ms",
     .assign = sdk::bind<&Options::batch_timeout>()},
    {.name = "commit_interval",
     .type = sdk::OptionType::duration,
     .default_value = "1s",
     .required = false,
     .description = "how often delivered offsets are committed (also on rebalance and on stop)",
     .min = "1ms",
     .assign = sdk::bind<&Options::commit_interval>()},
    {.name = "max_message_size",
     .type = sdk::OptionType::size,
     .default_value = "1MiB",
     .required = false,
     .description = "larger messages go to the dead-letter topic",
     .min = "64",
     .max = "1GiB",
     .assign = sdk::bind<&Options::max_message_size>()},
    {.name = "drain_timeout",
     .type = sdk::OptionType::duration,
     .default_value = "10s",
     .required = false,
     .description = "on stop or rebalance, how long to wait for in-flight records to be "
                    "acknowledged before the final commit",
     .assign = sdk::bind<&Options::drain_timeout>()},
    {.name = "retry_backoff",
     .type = sdk::OptionType::duration,
     .default_value = "1s",
     .required = false,
     .description = "after a batch is acknowledged retryable, wait this long before reading it "
                    "again",
     .assign = sdk::bind<&Options::retry_backoff>()},
    {.name = "static_membership",
     .type = sdk::OptionType::boolean,
     .default_value = "true",
     .required = false,
     .description = "join the group as a static member (group.instance.id), so a restarted "
                    "consumer takes its partitions back at once instead of after the session "
                    "timeout",
     .assign = sdk::bind<&Options::static_membership>()},
    {.name = "group_instance_id",
     .type = sdk::OptionType::string,
     .default_value = nullptr,
     .required = false,
     .description = "the static member's id, unique per consumer in the group; default <agent "
                    "name>.<component id>",
     .assign = sdk::bind<&Options::group_instance_id>()},
};

class KafkaSource final : public sdk::Source {
 public:
  KafkaSource(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

 protected:
  sdk::Status on_start() override;
  sdk::Status on_run() override;
  void on_stop_requested() override;
  void on_acknowledge(std::uint64_t token, sdk::AckStatus status) override;

 private:
  using Clock = std::chrono::steady_clock;

  using Ref = OffsetTracker::Ref;
  /// What an emitted batch needs when its acknowledgement arrives: the offsets, and the
  /// consumed messages themselves (no copy), for the DLQ when a sink rejects the batch.
  struct BatchInfo {
    std::vector<Ref> refs;
    std::vector<rd_kafka_message_t*> msgs;
    BatchInfo() = default;
    BatchInfo(BatchInfo&& o) noexcept : refs(std::move(o.refs)), msgs(std::move(o.msgs)) {
      o.msgs.clear();
    }
    BatchInfo& operator=(BatchInfo&& o) noexcept {
      if (this != &o) {
        release();
        refs = std::move(o.refs);
        msgs = std::move(o.msgs);
        o.msgs.clear();
      }
      return *this;
    }
    BatchInfo(const BatchInfo&) = delete;
    BatchInfo& operator=(const BatchInfo&) = delete;
    ~BatchInfo() { release(); }
    void release() noexcept {
      for (rd_kafka_message_t* m : msgs) {
        rd_kafka_message_destroy(m);
      }
      msgs.clear();
    }
  };
  /// One message on its way to the DLQ (the delivery report's opaque).
  struct DlqMessage {
    Ref ref;
    std::string topic;  // DLQ topic
    std::string key, value;
    bool has_key = false;
    rd_kafka_headers_t* headers = nullptr;  // original headers plus webmon-dlq-*
    bool truncated = false;
    ~DlqMessage();
  };

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void dlq_dr_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list);
  /// The tracker's index of a known partition (cached for runs of one partition's messages).
  std::optional<std::uint32_t> find_partition(const char* topic, std::int32_t partition);
  /// Takes ownership of the messages it keeps (sets their slots to nullptr).
  void handle_messages(rd_kafka_message_t** msgs, std::size_t n);
  bool emit_current();
  void service();
  void pump_dlq();
  void commit(bool sync, const std::vector<std::uint32_t>* only);
  void send_to_dlq(std::unique_ptr<DlqMessage> m);
  std::unique_ptr<DlqMessage> make_dlq(const Ref& ref, const std::string& topic,
                                       std::string_view key, bool has_key, std::string_view value,
                                       const rd_kafka_headers_t* original, std::int32_t partition,
                                       const std::string& reason);
  std::string dlq_topic_for(const std::string& topic) const;
  void wait_for_partitions(const std::vector<std::uint32_t>& parts, Clock::time_point deadline);
  void set_cap_pause(bool pause);
  sdk::Status subscribe();
  /// Whether the consumer's fatal error is FENCED_INSTANCE_ID: another member joined with the
  /// same group.instance.id.
  bool fenced() const;
  /// Replaces a fenced consumer by one without group.instance.id (a dynamic member), so two
  /// consumers configured with the same id do not keep stopping each other.
  sdk::Status rejoin_as_dynamic_member();

  kafka::Connection conn_;
  std::vector<std::string> topics_;
  std::string group_id_;
  std::string dead_letter_topic_;
  std::int64_t max_in_flight_;
  std::size_t batch_size_;
  std::chrono::milliseconds batch_timeout_;
  std::chrono::milliseconds commit_interval_;
  std::size_t max_message_size_;
  std::chrono::milliseconds drain_timeout_;
  std::chrono::milliseconds retry_backoff_;

  std::string instance_id_;  // group.instance.id; "" = dynamic membership

  kafka::ConfPtr consumer_conf_;
  kafka::ConfPtr dynamic_conf_;  // without group.instance.id, for rejoin_as_dynamic_member
  kafka::ConfPtr dlq_conf_;
  kafka::ClientHooks consumer_hooks_;
  kafka::ClientHooks dynamic_hooks_;
  kafka::ClientHooks dlq_hooks_;
  kafka::ClientHooks* hooks_ = &consumer_hooks_;  // the current consumer's
  kafka::ClientPtr fenced_consumer_;  // closed; kept until the messages it owns are released
  kafka::ClientPtr consumer_;
  kafka::ClientPtr dlq_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::unique_ptr<DecodePool> decode_pool_;              // created by on_run
  std::unique_ptr<WireKinds> wire_kinds_;                // created by on_start
  std::vector<std::unique_ptr<WireKinds::Slot>> slots_;  // one per decoder of the pool
  unsigned decode_threads_ = 2;
  std::size_t prefetch_bytes_ = 0;

  // Shared with acknowledgements and delivery reports.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  OffsetTracker tracker_;
  std::unordered_map<std::uint64_t, BatchInfo> batches_;
  std::vector<Ref> rewinds_;  // first record per partition of batches acknowledged retryable
  std::vector<std::unique_ptr<DlqMessage>> dlq_work_;  // waiting to be (re)produced
  bool stopping_ = false;
  bool recommit_ = false;

  // Run-thread state.
  sdk::Batch current_;
  BatchInfo current_info_;
  Clock::time_point current_since_{};
  std::uint64_t next_token_ = 0;
  Clock::time_point last_commit_{};
  bool cap_paused_ = false;
  Clock::time_point cap_since_{};
  std::uint32_t last_part_ = UINT32_MAX;
  const rd_kafka_topic_t* last_rkt_ = nullptr;  // cache: last message's topic handle
  std::int32_t last_rkt_partition_ = -1;
  std::vector<rd_kafka_message_t*> msgs_;
  struct Decoded {
    bool skip = true;
    bool ok = false;
    bool taken = true;  // `record` was moved into a batch (or never filled): refill it first
    std::uint32_t part = 0;
    sdk::Record record;  // decoded into in place (strings keep their storage)
    std::string error;
  };
  std::vector<Decoded> decoded_;
  // Records of finished batches (Emitter::take_spare_records) that take the place of those
  // moved into batches, so that decoding overwrites storage instead of allocating it.
  std::vector<sdk::Record> spare_;
  std::size_t spare_next_ = 0;
  void refill(sdk::Record& r, bool& asked);

  sdk::Counter* dead_lettered_ = nullptr;
  sdk::Counter* rejected_ = nullptr;
  sdk::Counter* retried_ = nullptr;
  sdk::Counter* commits_ = nullptr;
  std::map<int, Clock::time_point> error_logged_;
  sdk::LogLimiter limiter_;
};

}  // namespace webmon::plugins::kafka_source
