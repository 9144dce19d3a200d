// kafka_sink implementation (see kafka_sink.hpp for the contract).
#include "kafka_sink.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "webmon/common/kind_wire.hpp"
#include "webmon/common/wire.hpp"

namespace webmon::plugins::kafka_sink {

using sdk::AckStatus;

/// One written batch: resolved when every produced record got its delivery report. `pending`
/// starts at one extra reference held by on_write while it produces.
struct KafkaSink::BatchState {
  sdk::Ack ack;
  std::atomic<std::size_t> pending{1};
  std::atomic<std::uint8_t> worst{0};
  /// The JSON values of every record, back to back. librdkafka points into it (no copy) until
  /// each record's delivery report, so it lives as long as the batch is unresolved.
  std::string values;

  void worsen(AckStatus s) noexcept {
    auto v = static_cast<std::uint8_t>(s);
    std::uint8_t cur = worst.load();
    while (cur < v && !worst.compare_exchange_weak(cur, v)) {
    }
  }
};

namespace {

std::vector<std::pair<std::string, std::string>> managed_properties() {
  return {{"bootstrap.servers", "brokers"},
          {"metadata.broker.list", "brokers"},
          {"security.protocol", "security_protocol"},
          {"ssl.ca.location", "ca_file"},
          {"ssl.certificate.location", "cert_file"},
          {"ssl.key.location", "key_file"},
          {"ssl.key.password", "key_password"},
          {"sasl.mechanisms", "sasl_mechanism"},
          {"sasl.mechanism", "sasl_mechanism"},
          {"sasl.username", "sasl_username"},
          {"sasl.password", "sasl_password"},
          {"enable.idempotence", ""},
          {"acks", ""},
          {"request.required.acks", ""},
          {"compression.codec", "compression"},
          {"compression.type", "compression"},
          {"linger.ms", "linger"},
          {"queue.buffering.max.ms", "linger"},
          {"queue.buffering.max.messages", "queue_max_records"},
          {"queue.buffering.max.kbytes", "queue_max_size"},
          {"message.timeout.ms", "delivery_timeout"},
          {"delivery.timeout.ms", "delivery_timeout"}};
}

}  // namespace

KafkaSink::KafkaSink(const sdk::ConfigNode& config, sdk::Context& ctx) : hooks_(ctx, "producer") {
  Options o = sdk::load_options<Options>(config, kOptions);
  o.connection.check(config, managed_properties());
  conn_ = std::move(o.connection);
  topic_ = std::move(o.topic);
  if (o.key_field) {
    key_override_ = true;
    key_field_ = *o.key_field;
    if (!key_field_.empty() &&
        (key_field_.size() > 63 || key_field_[0] < 'a' || key_field_[0] > 'z' ||
         key_field_.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
             std::string::npos)) {
      config.find("key_field")
          ->fail("option 'key_field': '" + key_field_ +
                 "' is not a field name ([a-z][a-z0-9_]*, at most 63 characters; \"\" for no "
                 "key)");
    }
  }
  if (!kafka::valid_topic_name(topic_)) {
    config.find("topic")->fail("option 'topic': '" + topic_ +
                               "' is not a valid Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)");
  }
  // The table's choices take either case; librdkafka is given lower case.
  std::string compression = o.compression;
  std::transform(compression.begin(), compression.end(), compression.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (o.delivery_timeout.count() != 0 && o.delivery_timeout <= o.linger) {
    config.find("delivery_timeout")
        ->fail("option 'delivery_timeout' must be 0 (never) or longer than 'linger'");
  }
  const std::vector<std::pair<std::string, std::string>> props = {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", compression},
      {"linger.ms", std::to_string(o.linger.count())},
      {"queue.buffering.max.messages", std::to_string(o.queue_max_records)},
      {"queue.buffering.max.kbytes",
       std::to_string(std::max<std::uint64_t>(1, o.queue_max_size >> 10U))},
      {"message.timeout.ms", std::to_string(o.delivery_timeout.count())},
      // Reconnect within a second once the broker is back (librdkafka's default is 10 s;
      // Java's is 1 s).
      {"reconnect.backoff.max.ms", "1000"},
      // Same key → same partition as the Java client's default partitioner.
      {"partitioner", "murmur2_random"},
  };
  conf_ = conn_.make_conf(config, props);
  // Batches are produced grouped by partition (see group_by_partition), which needs the
  // partition librdkafka will choose: our own partitioner callback is murmur2_random (as set
  // above) and notes the partition count. A partitioner chosen in the librdkafka map wins and
  // (under either spelling) turns grouping off.
  bool group = true;
  for (const auto& [key, value] : conn_.librdkafka) {
    if (key == "partitioner" || key == "topic.partitioner") {
      group = false;
    }
  }
  if (group) {
    rd_kafka_topic_conf_t* tconf = rd_kafka_conf_get_default_topic_conf(conf_.get());
    if (tconf == nullptr) {  // none yet: "partitioner" above normally made it
      tconf = rd_kafka_topic_conf_new();
      rd_kafka_conf_set_default_topic_conf(conf_.get(), tconf);  // takes ownership
    }
    rd_kafka_topic_conf_set_partitioner_cb(tconf, &KafkaSink::partition_cb);
    rd_kafka_topic_conf_set_opaque(tconf, this);
  }
}

std::int32_t KafkaSink::partition_cb(const rd_kafka_topic_t* rkt, const void* key,
                                     std::size_t keylen, std::int32_t partition_cnt,
                                     void* rkt_opaque, void* msg_opaque) {
  static_cast<KafkaSink*>(rkt_opaque)
      ->partition_count_.store(partition_cnt, std::memory_order_relaxed);
  return rd_kafka_msg_partitioner_murmur2_random(rkt, key, keylen, partition_cnt, rkt_opaque,
                                                 msg_opaque);
}

// Why group: check sources emit batches that cycle through their targets, so consecutive
// records go to different partitions. librdkafka then appends to a different partition queue
// at every call and later gathers each partition's messages from all over the heap; produced
// grouped by partition, the same batch costs about a sixth less CPU (bench/kafka).
void KafkaSink::group_by_partition(const std::vector<sdk::Record>& records) {
  // keys_ holds each record's key (see on_write).
  const std::size_t n = records.size();
  order_.resize(n);
  const std::int32_t count = partition_count_.load(std::memory_order_relaxed);
  if (count <= 1) {
    for (std::size_t i = 0; i < n; ++i) {
      order_[i] = static_cast<std::uint32_t>(i);
    }
    return;
  }
  // Counting sort on the partition; records without a key (random partition) go last.
  partition_of_.resize(n);
  bucket_.assign(static_cast<std::size_t>(count) + 2, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string* key = keys_[i];
    const std::int32_t p = key != nullptr
                               ? rd_kafka_msg_partitioner_murmur2(
                                     rkt_.get(), key->data(), key->size(), count, nullptr, nullptr)
                               : count;
    partition_of_[i] = p;
    ++bucket_[static_cast<std::size_t>(p) + 1];
  }
  for (std::size_t b = 1; b < bucket_.size(); ++b) {
    bucket_[b] += bucket_[b - 1];
  }
  for (std::size_t i = 0; i < n; ++i) {
    order_[bucket_[static_cast<std::size_t>(partition_of_[i])]++] = static_cast<std::uint32_t>(i);
  }
}

KafkaSink::~KafkaSink() {
  stop_poller();
  if (rk_) {
    // Anything still queued (flush was not called or timed out) resolves as retryable.
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_.get(), 0);
    rd_kafka_flush(rk_.get(), 1000);
  }
  rkt_.reset();
  rk_.reset();
}

sdk::Status KafkaSink::on_start() {
  rejected_records_ = &ctx().counter("rejected_records");
  failed_records_ = &ctx().counter("retryable_records");
  queue_full_waits_ = &ctx().counter("queue_full_waits");
  hooks_.owner = this;
  hooks_.install(conf_.get());
  rd_kafka_conf_set_dr_msg_cb(conf_.get(), &KafkaSink::dr_msg_cb);
  rk_ = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf_));
  rkt_.reset(rd_kafka_topic_new(rk_.get(), topic_.c_str(), nullptr));
  if (!rkt_) {
    return sdk::Status::error("cannot create topic handle for '" + topic_ +
                              "': " + rd_kafka_err2str(rd_kafka_last_error()));
  }
  sdk::Status s = kafka::check_connection(rk_.get(), hooks_, conn_, conn_.connect_timeout);
  if (!s) {
    return s;
  }
  poller_ = std::thread([this] {
    while (!poller_stop_.load(std::memory_order_relaxed)) {
      rd_kafka_poll(rk_.get(), 100);
    }
  });
  ctx().info("producing to topic '" + topic_ + "' (" + conn_.describe() + ")");
  return sdk::Status::ok();
}

void KafkaSink::stop_poller() {
  poller_stop_ = true;
  if (poller_.joinable()) {
    // Wake the poller from its rd_kafka_poll() wait (up to 100 ms otherwise, at every stop).
    rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk_.get());
    rd_kafka_queue_yield(main_queue);
    rd_kafka_queue_destroy(main_queue);
    poller_.join();
  }
}

void KafkaSink::finish_one(BatchState* state, AckStatus status) {
  if (status != AckStatus::delivered) {
    state->worsen(status);
  }
  if (state->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    state->ack.resolve(static_cast<AckStatus>(state->worst.load()));
    delete state;
    outstanding_batches_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void KafkaSink::dr_msg_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* /*opaque*/) {
  auto* self = static_cast<KafkaSink*>(kafka::ClientHooks::of(rk).owner);
  auto* state = static_cast<BatchState*>(msg->_private);
  self->unconfirmed_records_.fetch_sub(1, std::memory_order_relaxed);
  AckStatus status = AckStatus::delivered;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (kafka::is_permanent_produce_error(msg->err)) {
      status = AckStatus::rejected;
      self->rejected_records_->add();
    } else {
      status = AckStatus::retryable;
      self->failed_records_->add();
    }
    if (msg->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
        msg->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
      self->limiter_.log(self->ctx(), sdk::LogLevel::error, "delivery",
                         std::string("record not delivered to '") + self->topic_ + "' (" +
                             rd_kafka_err2name(msg->err) + "): " + rd_kafka_err2str(msg->err) +
                             (status == AckStatus::rejected ? "; its batch is rejected"
                                                            : "; its batch is retryable"));
    }
  }
  if (state != nullptr) {
    self->finish_one(state, status);
  }
}

const KafkaSink::KindWire& KafkaSink::kind_wire(const std::string& kind) {
  if (last_kind_ != nullptr && last_kind_->checked == batch_seq_ && *last_kind_name_ == kind) {
    return *last_kind_;
  }
  auto [it, inserted] = kinds_.try_emplace(kind);
  KindWire& w = it->second;
  last_kind_name_ = &it->first;
  last_kind_ = &w;
  if (w.checked == batch_seq_) {
    return w;
  }
  w.checked = batch_seq_;
  const sdk::KindSpec* spec = ctx().find_kind(kind);
  if (!inserted && spec == w.spec) {
    return w;
  }
  // First sight of the kind, or the host knows a newer declaration: build its headers once.
  w.spec = spec;
  if (spec != nullptr) {
    w.version = std::to_string(spec->version);
    w.fields = common::format_kind_fields(*spec);
    w.hash = common::kind_hash(kind, w.version, w.fields);
    w.key_field = key_override_ ? key_field_ : (spec->key_field != nullptr ? spec->key_field : "");
    ctx().debug("kind '" + kind + "' version " + w.version + ": webmon-fields " + w.fields +
                (w.key_field.empty() ? ", no key" : ", key field '" + w.key_field + "'"));
  } else {
    w.version.clear();
    w.fields.clear();
    w.hash.clear();
    w.key_field = key_override_ ? key_field_ : "";
    limiter_.log(ctx(), sdk::LogLevel::warn, "undeclared:" + kind,
                 "kind '" + kind +
                     "' has no declaration in this agent: its records are sent "
                     "without webmon-fields (a consumer that does not know the kind sends them to "
                     "its dead-letter topic)" +
                     (w.key_field.empty() ? std::string(" and without a key") : std::string()));
  }
  return w;
}

sdk::Status KafkaSink::on_write(const sdk::Batch& batch, sdk::Ack ack) {
  if (batch.records.empty()) {
    ack.resolve(AckStatus::delivered);
    return sdk::Status::ok();
  }
  const std::size_t n = batch.records.size();
  // Everything that allocates comes before the batch state takes the Ack: should it throw, the
  // Ack is destroyed unresolved, which reports the batch retryable (nothing is left pending).
  ++batch_seq_;
  keys_.resize(n);
  wires_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const sdk::Record& r = batch.records[i];
    const KindWire& w = kind_wire(r.kind);
    wires_[i] = &w;
    keys_[i] = w.key_field.empty() ? nullptr : r.get<std::string>(w.key_field);
  }
  group_by_partition(batch.records);
  ends_.resize(n);
  // Encode the whole batch first, in produce order (the buffer may still grow); librdkafka gets
  // pointers into it once it is complete.
  std::string encoded;
  encoded.reserve(n * (value_size_hint_ + value_size_hint_ / 8 + 64));
  for (std::size_t k = 0; k < n; ++k) {
    common::append_json(batch.records[order_[k]], wires_[order_[k]]->hash, encoded);
    ends_[k] = encoded.size();
  }
  value_size_hint_ = encoded.size() / n;  // NOLINT(clang-analyzer-core.DivideZero): n > 0 here
  auto* state = new BatchState{};
  state->values = std::move(encoded);
  state->ack = std::move(ack);
  state->pending.store(n + 1);
  outstanding_batches_.fetch_add(1, std::memory_order_acq_rel);
  const std::string& values = state->values;
  std::size_t k = 0;
  for (; k < n; ++k) {
    const std::uint32_t i = order_[k];
    const sdk::Record& r = batch.records[i];
    const KindWire& w = *wires_[i];
    const std::size_t begin = k == 0 ? 0 : ends_[k - 1];
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(5);
    rd_kafka_header_add(hdrs, "content-type", 12, "application/json", 16);
    rd_kafka_header_add(hdrs, "webmon-schema", 13, "1", 1);
    rd_kafka_header_add(hdrs, "webmon-kind", 11, r.kind.data(),
                        static_cast<ssize_t>(r.kind.size()));
    if (!w.fields.empty() || w.spec != nullptr) {
      rd_kafka_header_add(hdrs, "webmon-kind-version", 19, w.version.data(),
                          static_cast<ssize_t>(w.version.size()));
      rd_kafka_header_add(hdrs, "webmon-fields", 13, w.fields.data(),
                          static_cast<ssize_t>(w.fields.size()));
    }
    kafka::Produce msg;
    msg.rkt = rkt_.get();
    msg.value = std::string_view(values.data() + begin, ends_[k] - begin);
    if (keys_[i] != nullptr) {
      msg.key = *keys_[i];  // librdkafka copies keys
    }
    msg.headers = hdrs;
    msg.opaque = state;
    msg.copy = false;
    rd_kafka_resp_err_t err = kafka::produce(rk_.get(), msg);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // librdkafka's queue is full: wait for delivery reports (served by the poller thread) to
      // make room. This is the backpressure the host sees as a slow write.
      queue_full_waits_->add();
      msg.block = true;
      err = kafka::produce(rk_.get(), msg);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      unconfirmed_records_.fetch_add(1, std::memory_order_relaxed);
    } else {
      rd_kafka_headers_destroy(hdrs);
      const AckStatus status =
          kafka::is_permanent_produce_error(err) ? AckStatus::rejected : AckStatus::retryable;
      (status == AckStatus::rejected ? rejected_records_ : failed_records_)->add();
      limiter_.log(ctx(), sdk::LogLevel::error, "produce",
                   "record " + r.id + " not produced to '" + topic_ + "' (" +
                       rd_kafka_err2name(err) + "): " + rd_kafka_err2str(err));
      finish_one(state, status);
    }
    if (hooks_.fatal()) {
      ++k;
      break;
    }
  }
  // Records never handed to librdkafka (fatal producer error) are retryable.
  for (; k < n; ++k) {
    finish_one(state, AckStatus::retryable);
  }
  // NOLINTNEXTLINE(clang-analyzer-cplusplus.NewDelete): `pending` counts n + 1 references
  finish_one(state, AckStatus::delivered);  // on_write's own reference
  // Delivery reports are served by the poller thread, not here: this thread is the one that
  // encodes and produces.
  if (hooks_.fatal()) {
    return sdk::Status::error("the Kafka producer hit a fatal error; records are not delivered");
  }
  return sdk::Status::ok();
}

sdk::Status KafkaSink::on_flush(std::chrono::milliseconds timeout) {
  if (!rk_) {
    return sdk::Status::ok();
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  // Keep a share of the timeout for the purge's delivery reports (they come at once).
  const auto purge_at =
      deadline - std::min<std::chrono::milliseconds>(timeout / 10, std::chrono::milliseconds(1000));
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(purge_at - Clock::now()).count();
    err = rd_kafka_flush(rk_.get(), static_cast<int>(std::clamp<std::int64_t>(left, 0, 1000)));
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT || Clock::now() >= purge_at) {
      break;
    }
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && outstanding_batches_.load() == 0) {
    stop_poller();
    return sdk::Status::ok();
  }
  const std::int64_t left = unconfirmed_records_.load();
  // Whatever is still queued or in flight: purged, and its delivery reports (error
  // _PURGE_QUEUE / _PURGE_INFLIGHT) resolve the batches as retryable. They are generated at
  // once; serve them until every batch is resolved (bounded only against a librdkafka bug).
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const auto hard_stop = std::max(deadline, Clock::now() + std::chrono::milliseconds(500));
  while (outstanding_batches_.load() > 0 && Clock::now() < hard_stop) {
    rd_kafka_poll(rk_.get(), 10);
  }
  stop_poller();
  const std::int64_t unresolved = outstanding_batches_.load();
  return sdk::Status::error(
      "flush timed out after " + std::to_string(timeout.count()) + " ms: " + std::to_string(left) +
      " records not confirmed by Kafka were purged and reported retryable" +
      (unresolved > 0 ? "; " + std::to_string(unresolved) + " batches still unresolved"
                      : std::string()));
}

}  // namespace webmon::plugins::kafka_sink
