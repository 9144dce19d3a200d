// kafka_source implementation (see kafka_source.hpp for the contract).
#include "kafka_source.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace webmon::plugins::kafka_source {

using sdk::AckStatus;

namespace {

constexpr std::size_t kTruncatedDlqBytes = std::size_t{64} * 1024;

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
          {"group.id", "group_id"},
          {"group.instance.id", "group_instance_id"},
          {"auto.offset.reset", "start_from"},
          {"enable.auto.commit", ""},
          {"enable.auto.offset.store", ""},
          {"enable.idempotence", ""},
          {"acks", ""},
          {"queued.max.messages.kbytes", "prefetch_max_size"},
          {"queued.min.messages", "prefetch_max_size"}};
}

/// Kafka accepts 1 to 249 of [a-zA-Z0-9._-] in a group.instance.id.
bool valid_instance_id(const std::string& id) {
  return !id.empty() && id.size() <= 249 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

/// <agent name>.<component id>, with other characters replaced by '_' (at most 249).
std::string default_instance_id(const std::string& agent, const std::string& component) {
  std::string id = agent + "." + component;
  for (char& c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-') {
      c = '_';
    }
  }
  if (id.size() > 249) {
    id.resize(249);
  }
  return id;
}

void add_header(rd_kafka_headers_t* h, const char* name, const std::string& value) {
  rd_kafka_header_add(h, name, -1, value.data(), static_cast<ssize_t>(value.size()));
}

}  // namespace

KafkaSource::DlqMessage::~DlqMessage() {
  if (headers != nullptr) {
    rd_kafka_headers_destroy(headers);
  }
}

KafkaSource::KafkaSource(const sdk::ConfigNode& config, sdk::Context& ctx)
    : consumer_hooks_(ctx, "consumer"),
      dynamic_hooks_(ctx, "consumer"),
      dlq_hooks_(ctx, "dead-letter producer") {
  Options o = sdk::load_options<Options>(config, kOptions);
  o.connection.check(config, managed_properties());
  conn_ = std::move(o.connection);
  topics_ = std::move(o.topics);
  group_id_ = std::move(o.group_id);
  dead_letter_topic_ = std::move(o.dead_letter_topic);
  max_in_flight_ = o.max_in_flight;
  batch_size_ = static_cast<std::size_t>(o.batch_size);
  batch_timeout_ = o.batch_timeout;
  commit_interval_ = o.commit_interval;
  max_message_size_ = static_cast<std::size_t>(o.max_message_size);
  drain_timeout_ = o.drain_timeout;
  retry_backoff_ = o.retry_backoff;
  decode_threads_ = static_cast<unsigned>(o.decode_threads);
  // The prefetch queue is bounded by size alone (queued.min.messages out of reach): librdkafka
  // 2.0 (Debian 12) stops fetching at either bound, and FetchWaker (fetch_waker.hpp), which
  // restarts fetching once the queue has drained, estimates the queue by size.
  prefetch_bytes_ = static_cast<std::size_t>(o.prefetch_max_size);
  for (const auto& t : topics_) {
    if (!kafka::valid_topic_name(t)) {
      config.find("topics")->fail("option 'topics': '" + t +
                                  "' is not a valid Kafka topic name (1 to 249 of a-z A-Z 0-9 . "
                                  "_ -)");
    }
    if (dlq_topic_for(t) == t) {
      config.find("dead_letter_topic")
          ->fail("option 'dead_letter_topic' must differ from the consumed topic '" + t + "'");
    }
  }
  if (group_id_.empty()) {
    config.find("group_id")->fail("option 'group_id' must not be empty");
  }

  // Static membership: a restarted consumer (same group.instance.id) takes its partitions back
  // at once; a member that does not come back is replaced after session.timeout.ms.
  if (o.group_instance_id) {
    instance_id_ = *o.group_instance_id;
    const sdk::ConfigNode* id = config.find("group_instance_id");
    if (!o.static_membership) {
      id->fail("option 'group_instance_id' needs static_membership: true (remove one of them)");
    }
    if (!valid_instance_id(instance_id_)) {
      id->fail("option 'group_instance_id': '" + instance_id_ +
               "' is not a valid group.instance.id (1 to 249 of a-z A-Z 0-9 . _ -)");
    }
  } else if (o.static_membership) {
    instance_id_ = default_instance_id(ctx.agent_name(), ctx.component_id());
  }

  std::vector<std::pair<std::string, std::string>> props{
      {"group.id", group_id_},
      // A monitor wants failures noticed in seconds: a member that stops heartbeating is
      // replaced after 10 s (librdkafka: 45 s). Brokers accept 6 s to 30 min by default
      // (group.min/max.session.timeout.ms). Heartbeats come from librdkafka's own thread.
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", o.start_from},
      {"enable.partition.eof", "false"},
      {"queued.max.messages.kbytes", std::to_string(o.prefetch_max_size >> 10U)},
      {"queued.min.messages", "10000000"},
      {"reconnect.backoff.max.ms", "1000"}};
  if (!FetchWaker::needed()) {
    // librdkafka >= 2.4 backs a full queue off by this instead (default 1 s), and a wake-up
    // does not shorten it.
    props.emplace_back("fetch.queue.backoff.ms", "10");
  }
  if (!instance_id_.empty()) {
    dynamic_conf_ = conn_.make_conf(config, props);
    props.emplace_back("group.instance.id", instance_id_);
  }
  consumer_conf_ = conn_.make_conf(config, props);
  dlq_conf_ = conn_.make_conf(config, {{"enable.idempotence", "true"},
                                       {"acks", "all"},
                                       {"message.timeout.ms", "0"},
                                       {"linger.ms", "5"},
                                       {"reconnect.backoff.max.ms", "1000"}});
}

KafkaSource::~KafkaSource() {
  // Messages still held by unacknowledged batches must go before the consumer.
  batches_.clear();
  current_info_.release();
  if (queue_ != nullptr) {
    rd_kafka_queue_destroy(queue_);
  }
  consumer_.reset();
  fenced_consumer_.reset();
  if (dlq_) {
    rd_kafka_purge(dlq_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(dlq_.get(), 1000);
  }
  dlq_.reset();
}

std::string KafkaSource::dlq_topic_for(const std::string& topic) const {
  return dead_letter_topic_.empty() ? topic + ".dlq" : dead_letter_topic_;
}

sdk::Status KafkaSource::on_start() {
  dead_lettered_ = &ctx().counter("dead_lettered");
  rejected_ = &ctx().counter("rejected_records");
  retried_ = &ctx().counter("retried_batches");
  commits_ = &ctx().counter("commits");
  wire_kinds_ = std::make_unique<WireKinds>(ctx());
  wire_kinds_->register_compiled_in();

  dlq_hooks_.owner = this;
  dlq_hooks_.install(dlq_conf_.get());
  rd_kafka_conf_set_dr_msg_cb(dlq_conf_.get(), &KafkaSource::dlq_dr_cb);
  dlq_ = kafka::make_client(RD_KAFKA_PRODUCER, std::move(dlq_conf_));

  consumer_hooks_.owner = this;
  consumer_hooks_.install(consumer_conf_.get());
  rd_kafka_conf_set_rebalance_cb(consumer_conf_.get(), &KafkaSource::rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(consumer_conf_.get(), &KafkaSource::commit_cb);
  consumer_ = kafka::make_client(RD_KAFKA_CONSUMER, std::move(consumer_conf_));
  sdk::Status s =
      kafka::check_connection(consumer_.get(), consumer_hooks_, conn_, conn_.connect_timeout);
  if (!s) {
    return s;
  }
  s = subscribe();
  if (!s) {
    return s;
  }
  std::string names;
  for (const auto& t : topics_) {
    names += (names.empty() ? "" : ", ") + t;
  }
  ctx().info("consuming " + names + " as group '" + group_id_ + "'" +
             (instance_id_.empty() ? std::string(", dynamic member")
                                   : ", static member '" + instance_id_ + "'") +
             " (" + conn_.describe() + ")");
  return sdk::Status::ok();
}

sdk::Status KafkaSource::subscribe() {
  rd_kafka_poll_set_consumer(consumer_.get());
  queue_ = rd_kafka_queue_get_consumer(consumer_.get());
  rd_kafka_topic_partition_list_t* subs =
      rd_kafka_topic_partition_list_new(static_cast<int>(topics_.size()));
  for (const auto& t : topics_) {
    rd_kafka_topic_partition_list_add(subs, t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return sdk::Status::error(std::string("cannot subscribe: ") + rd_kafka_err2str(err));
  }
  return sdk::Status::ok();
}

bool KafkaSource::fenced() const {
  char reason[256];
  return !instance_id_.empty() && rd_kafka_fatal_error(consumer_.get(), reason, sizeof reason) ==
                                      RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

sdk::Status KafkaSource::rejoin_as_dynamic_member() {
  ctx().warn("another consumer joined group '" + group_id_ + "' with this consumer's " +
             "group.instance.id '" + instance_id_ +
             "' and took over its partitions; continuing as a dynamic member of the group. Give "
             "every consumer of a group its own agent name or group_instance_id");
  // Whatever was read is forgotten: its offsets are not committed, and the partitions' new
  // owners read it again (at-least-once). Acknowledgements still to come are ignored.
  current_ = sdk::Batch{};
  current_.records.reserve(batch_size_);
  current_info_.release();
  {
    std::lock_guard lock(mu_);
    for (std::uint32_t i = 0; i < tracker_.size(); ++i) {
      tracker_.revoke(i);
    }
    rewinds_.clear();
  }
  last_rkt_ = nullptr;
  cap_paused_ = false;
  cap_since_ = {};
  rd_kafka_queue_destroy(queue_);
  queue_ = nullptr;
  (void)rd_kafka_consumer_close(consumer_.get());  // returns at once: the fatal error
  // Unacknowledged batches still hold messages of the fenced consumer.
  fenced_consumer_ = std::move(consumer_);
  instance_id_.clear();
  dynamic_hooks_.owner = this;
  dynamic_hooks_.install(dynamic_conf_.get());
  rd_kafka_conf_set_rebalance_cb(dynamic_conf_.get(), &KafkaSource::rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(dynamic_conf_.get(), &KafkaSource::commit_cb);
  try {
    consumer_ = kafka::make_client(RD_KAFKA_CONSUMER, std::move(dynamic_conf_));
  } catch (const std::exception& e) {
    return sdk::Status::error(e.what());
  }
  hooks_ = &dynamic_hooks_;
  return subscribe();
}

void KafkaSource::on_stop_requested() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (queue_ != nullptr) {
    rd_kafka_queue_yield(queue_);
  }
}

// ---------------------------------------------------------------------------------------------
// Partition lookup (run thread)

std::optional<std::uint32_t> KafkaSource::find_partition(const char* topic,
                                                         std::int32_t partition) {
  if (last_part_ < tracker_.size() && tracker_.partition(last_part_) == partition &&
      tracker_.topic(last_part_) == topic) {
    return last_part_;
  }
  const auto found = tracker_.find(topic, partition);
  if (found) {
    last_part_ = *found;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements (any thread)

void KafkaSource::on_acknowledge(std::uint64_t token, AckStatus status) {
  std::unique_lock lock(mu_);
  auto it = batches_.find(token);
  if (it == batches_.end()) {
    return;
  }
  BatchInfo info = std::move(it->second);
  batches_.erase(it);
  switch (status) {
    case AckStatus::delivered:
      for (const Ref& r : info.refs) {
        (void)tracker_.resolve(r);
      }
      break;
    case AckStatus::retryable: {
      // Read the batch again: every partition from the batch's first record in it.
      std::map<std::uint32_t, Ref> first;
      for (const Ref& r : info.refs) {
        if (tracker_.current(r)) {
          auto [f, inserted] = first.emplace(r.part, r);
          if (!inserted && r.offset < f->second.offset) {
            f->second = r;
          }
        }
      }
      for (const auto& [part, ref] : first) {
        rewinds_.push_back(ref);
      }
      retried_->add();
      break;
    }
    case AckStatus::rejected:
      rejected_->add(info.refs.size());
      for (std::size_t i = 0; i < info.refs.size(); ++i) {
        const Ref& r = info.refs[i];
        if (!tracker_.current(r)) {
          continue;
        }
        const rd_kafka_message_t* m = info.msgs[i];
        rd_kafka_headers_t* hdrs = nullptr;
        (void)rd_kafka_message_headers(m, &hdrs);
        dlq_work_.push_back(make_dlq(
            r, dlq_topic_for(tracker_.topic(r.part)),
            std::string_view(static_cast<const char*>(m->key), m->key != nullptr ? m->key_len : 0),
            m->key != nullptr,
            std::string_view(static_cast<const char*>(m->payload),
                             m->payload != nullptr ? m->len : 0),
            hdrs, tracker_.partition(r.part), "rejected by a sink"));
      }
      break;
  }
  lock.unlock();
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Dead-letter topic

std::unique_ptr<KafkaSource::DlqMessage> KafkaSource::make_dlq(
    const Ref& ref, const std::string& topic, std::string_view key, bool has_key,
    std::string_view value, const rd_kafka_headers_t* original, std::int32_t partition,
    const std::string& reason) {
  auto m = std::make_unique<DlqMessage>();
  m->ref = ref;
  m->topic = topic;
  m->key.assign(key);
  m->has_key = has_key;
  m->value.assign(value);
  m->headers = original != nullptr ? rd_kafka_headers_copy(original) : rd_kafka_headers_new(5);
  add_header(m->headers, "webmon-dlq-reason", reason);
  add_header(m->headers, "webmon-dlq-topic", tracker_.topic(ref.part));
  add_header(m->headers, "webmon-dlq-partition", std::to_string(partition));
  add_header(m->headers, "webmon-dlq-offset", std::to_string(ref.offset));
  add_header(m->headers, "webmon-dlq-agent", ctx().agent_name());
  return m;
}

void KafkaSource::send_to_dlq(std::unique_ptr<DlqMessage> m) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_copy(m->headers);
  DlqMessage* raw = m.get();
  for (;;) {
    kafka::Produce msg;
    msg.topic = raw->topic.c_str();
    msg.value = raw->value;
    if (raw->has_key) {
      msg.key = std::string_view(raw->key.data(), raw->key.size());
      if (msg.key.data() == nullptr) {
        msg.key = std::string_view("");
      }
    }
    msg.headers = hdrs;
    msg.opaque = raw;
    msg.copy = false;
    const rd_kafka_resp_err_t err = kafka::produce(dlq_.get(), msg);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)m.release();  // owned by the delivery report now
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(dlq_.get(), 50);
      continue;
    }
    rd_kafka_headers_destroy(hdrs);
    if (kafka::is_permanent_produce_error(err) && !raw->truncated) {
      const std::size_t size = raw->value.size();
      raw->value.resize(std::min(size, kTruncatedDlqBytes));
      raw->truncated = true;
      add_header(raw->headers, "webmon-dlq-truncated-from", std::to_string(size));
      hdrs = rd_kafka_headers_copy(raw->headers);
      continue;
    }
    ctx().error("cannot write to dead-letter topic '" + raw->topic + "' (" +
                rd_kafka_err2name(err) + "); will retry");
    std::lock_guard lock(mu_);
    dlq_work_.push_back(std::move(m));
    return;
  }
}

void KafkaSource::dlq_dr_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* /*opaque*/) {
  auto* self = static_cast<KafkaSource*>(kafka::ClientHooks::of(rk).owner);
  std::unique_ptr<DlqMessage> m(static_cast<DlqMessage*>(msg->_private));
  if (!m) {
    return;
  }
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->dead_lettered_->add();
    std::lock_guard lock(self->mu_);
    (void)self->tracker_.resolve(m->ref);
    return;
  }
  if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    return;  // shutting down: not committed, read again next time
  }
  if (kafka::is_permanent_produce_error(msg->err) && !m->truncated) {
    const std::size_t size = m->value.size();
    m->value.resize(std::min(size, kTruncatedDlqBytes));
    m->truncated = true;
    add_header(m->headers, "webmon-dlq-truncated-from", std::to_string(size));
  } else {
    self->ctx().error("dead-letter message to '" + m->topic + "' not delivered (" +
                      rd_kafka_err2name(msg->err) + "); will retry");
  }
  std::lock_guard lock(self->mu_);
  self->dlq_work_.push_back(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Rebalance and commits (run thread)

void KafkaSource::rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* parts, void* /*opaque*/) {
  auto* self = static_cast<KafkaSource*>(kafka::ClientHooks::of(rk).owner);
  self->on_rebalance(err, parts);
}

void KafkaSource::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list) {
  rd_kafka_t* rk = consumer_.get();
  last_rkt_ = nullptr;
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::string names;
  for (int i = 0; i < list->cnt; ++i) {
    names += (i > 0 ? ", " : "") + std::string(list->elems[i].topic) + "/" +
             std::to_string(list->elems[i].partition);
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    {
      std::lock_guard lock(mu_);
      for (int i = 0; i < list->cnt; ++i) {
        tracker_.assign(tracker_.index(list->elems[i].topic, list->elems[i].partition));
      }
    }
    ctx().info("assigned " + (names.empty() ? std::string("no partitions") : names));
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, list);
      if (e != nullptr) {
        ctx().error(std::string("incremental assign failed: ") + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, list);
    }
    if (cap_paused_) {
      rd_kafka_pause_partitions(rk, list);
    }
    return;
  }

  // Revoked (or lost): give in-flight records of these partitions a chance to be acknowledged,
  // commit what is delivered, forget them.
  const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
  std::vector<std::uint32_t> revoked;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < list->cnt; ++i) {
      if (const auto p = find_partition(list->elems[i].topic, list->elems[i].partition)) {
        revoked.push_back(*p);
      }
    }
  }
  // Records of revoked partitions not emitted yet are dropped (they are not committed).
  if (!current_.records.empty()) {
    sdk::Batch kept;
    BatchInfo kept_info;
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < current_.records.size(); ++i) {
      const Ref& r = current_info_.refs[i];
      if (std::find(revoked.begin(), revoked.end(), r.part) != revoked.end()) {
        continue;
      }
      kept.records.push_back(std::move(current_.records[i]));
      kept_info.refs.push_back(r);
      kept_info.msgs.push_back(std::exchange(current_info_.msgs[i], nullptr));
    }
    std::erase(current_info_.msgs, nullptr);
    current_ = std::move(kept);
    current_info_ = std::move(kept_info);
  }
  if (!lost) {
    bool stopping = false;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    // On stop the run loop has drained already; otherwise wait for this rebalance.
    if (!stopping) {
      wait_for_partitions(revoked, Clock::now() + drain_timeout_);
    }
    commit(true, &revoked);
  }
  {
    std::lock_guard lock(mu_);
    for (const std::uint32_t i : revoked) {
      tracker_.revoke(i);
    }
  }
  ctx().info(std::string(lost ? "lost " : "revoked ") +
             (names.empty() ? std::string("no partitions") : names));
  if (cooperative) {
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, list);
    if (e != nullptr) {
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk, nullptr);
  }
  cv_.notify_all();
}

void KafkaSource::wait_for_partitions(const std::vector<std::uint32_t>& parts,
                                      Clock::time_point deadline) {
  for (;;) {
    pump_dlq();
    std::unique_lock lock(mu_);
    // A retryable batch of these partitions is not read again here: only make sure nothing
    // from its first record on is committed.
    for (auto it = rewinds_.begin(); it != rewinds_.end();) {
      if (std::find(parts.begin(), parts.end(), it->part) != parts.end()) {
        tracker_.forget_from(*it);
        it = rewinds_.erase(it);
      } else {
        ++it;
      }
    }
    std::size_t n = 0;
    for (const std::uint32_t i : parts) {
      n += tracker_.unresolved(i);
    }
    if (n == 0) {
      return;
    }
    if (Clock::now() >= deadline) {
      ctx().warn(std::to_string(n) + " records not acknowledged within drain_timeout (" +
                 std::to_string(drain_timeout_.count()) +
                 " ms); their offsets are not committed (they will be read again)");
      return;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

void KafkaSource::commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* /*offsets*/, void* /*opaque*/) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return;
  }
  auto* self = static_cast<KafkaSource*>(kafka::ClientHooks::of(rk).owner);
  self->ctx().warn(std::string("offset commit failed (") + rd_kafka_err2name(err) +
                   "); retrying at the next commit");
  std::lock_guard lock(self->mu_);
  self->recommit_ = true;
}

void KafkaSource::commit(bool sync, const std::vector<std::uint32_t>* only) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  {
    std::lock_guard lock(mu_);
    const bool all = std::exchange(recommit_, false);
    for (std::uint32_t i = 0; i < tracker_.size(); ++i) {
      if (only != nullptr && std::find(only->begin(), only->end(), i) == only->end()) {
        continue;
      }
      if (const auto offset = tracker_.take_commit(i, all)) {
        rd_kafka_topic_partition_list_add(list, tracker_.topic(i).c_str(), tracker_.partition(i))
            ->offset = *offset;
      }
    }
  }
  if (list->cnt > 0) {
    const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list, sync ? 0 : 1);
    commits_->add();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      ctx().warn(std::string("offset commit failed (") + rd_kafka_err2name(err) + ")");
      std::lock_guard lock(mu_);
      recommit_ = true;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
}

// ---------------------------------------------------------------------------------------------
// The consume loop (run thread)

void KafkaSource::set_cap_pause(bool pause) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  {
    std::lock_guard lock(mu_);
    for (std::uint32_t i = 0; i < tracker_.size(); ++i) {
      if (tracker_.accepting(i)) {
        rd_kafka_topic_partition_list_add(list, tracker_.topic(i).c_str(), tracker_.partition(i));
      }
    }
  }
  if (pause) {
    rd_kafka_pause_partitions(consumer_.get(), list);
  } else {
    rd_kafka_resume_partitions(consumer_.get(), list);
  }
  rd_kafka_topic_partition_list_destroy(list);
  cap_paused_ = pause;
}

void KafkaSource::pump_dlq() {
  rd_kafka_poll(dlq_.get(), 0);
  std::vector<std::unique_ptr<DlqMessage>> work;
  {
    std::lock_guard lock(mu_);
    work.swap(dlq_work_);
  }
  for (auto& m : work) {
    send_to_dlq(std::move(m));
  }
}

void KafkaSource::service() {
  pump_dlq();
  std::vector<Ref> rewinds;
  {
    std::lock_guard lock(mu_);
    if (current_.records.empty()) {
      rewinds.swap(rewinds_);
    }
  }
  const auto now = Clock::now();
  {
    // Retryable batches: pause the partition now, seek back and resume after the backoff.
    for (const Ref& first : rewinds) {
      std::lock_guard lock(mu_);
      if (tracker_.retry_from(first, now + retry_backoff_)) {
        rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, tracker_.topic(first.part).c_str(),
                                          tracker_.partition(first.part));
        rd_kafka_pause_partitions(consumer_.get(), l);
        rd_kafka_topic_partition_list_destroy(l);
      }
    }
    std::vector<std::pair<std::uint32_t, std::int64_t>> due;
    {
      std::lock_guard lock(mu_);
      due = tracker_.due_retries(now);
    }
    for (const auto& [i, offset] : due) {
      rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
      {
        std::lock_guard lock(mu_);
        rd_kafka_topic_partition_list_add(l, tracker_.topic(i).c_str(), tracker_.partition(i))
            ->offset = offset;
      }
      rd_kafka_error_t* e = rd_kafka_seek_partitions(consumer_.get(), l, 5000);
      if (e != nullptr) {
        ctx().error(std::string("seek failed: ") + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
      if (!cap_paused_) {
        rd_kafka_resume_partitions(consumer_.get(), l);
      }
      ctx().debug("reading " + std::string(l->elems[0].topic) + "/" +
                  std::to_string(l->elems[0].partition) + " again from offset " +
                  std::to_string(offset));
      rd_kafka_topic_partition_list_destroy(l);
    }
    if (now - last_commit_ >= commit_interval_) {
      commit(false, nullptr);
      last_commit_ = now;
    }
  }
}

bool KafkaSource::emit_current() {
  if (current_.records.empty()) {
    return true;
  }
  const std::uint64_t token = ++next_token_;
  {
    std::lock_guard lock(mu_);
    batches_.emplace(token, std::move(current_info_));
  }
  current_info_ = BatchInfo{};
  current_.token = token;
  sdk::Batch b = std::move(current_);
  current_ = sdk::Batch{};
  current_.records.reserve(batch_size_);
  sdk::EmitResult r = emitter().emit(std::move(b));
  while (r == sdk::EmitResult::refused && !ctx().stop_requested()) {
    (void)emitter().wait_writable(std::chrono::milliseconds(100));
    // NOLINTNEXTLINE(bugprone-use-after-move): emit() leaves a refused batch as it was
    r = emitter().emit(std::move(b));
  }
  if (!sdk::taken(r)) {
    std::lock_guard lock(mu_);
    batches_.erase(token);
    return false;
  }
  if (r == sdk::EmitResult::full) {
    // A `block` buffer downstream is at its limit: give it a moment before reading more.
    (void)emitter().wait_writable(std::chrono::milliseconds(100));
  }
  return true;
}

void KafkaSource::refill(sdk::Record& r, bool& asked) {
  if (spare_next_ == spare_.size()) {
    if (asked) {
      return;  // the host had none a moment ago (asked once per call of handle_messages)
    }
    spare_ = emitter().take_spare_records();  // one finished batch: ask again once it is used
    spare_next_ = 0;
    asked = spare_.empty();
  }
  if (spare_next_ < spare_.size()) {
    r = std::move(spare_[spare_next_++]);
  }
}

void KafkaSource::handle_messages(rd_kafka_message_t** msgs, std::size_t n) {
  // Decode without the lock (acknowledgements keep flowing), then track under one lock.
  if (decoded_.size() < n) {
    decoded_.resize(n);
  }
  // Records moved into batches are replaced by finished ones, to be overwritten.
  bool asked = false;
  for (std::size_t i = 0; i < n; ++i) {
    Decoded& d = decoded_[i];
    if (d.taken) {
      d.taken = false;
      refill(d.record, asked);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = msgs[i];
    Decoded& d = decoded_[i];
    d.skip = true;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ctx().counter("errors").add();
        const auto now = Clock::now();
        auto& last = error_logged_[static_cast<int>(m->err)];
        if (last == Clock::time_point{} || now - last >= std::chrono::seconds(10)) {
          last = now;
          ctx().warn(std::string("consume error (") + rd_kafka_err2name(m->err) +
                     "): " + rd_kafka_message_errstr(m));
        }
      }
      continue;
    }
    std::optional<std::uint32_t> p;
    if (m->rkt == last_rkt_ && m->partition == last_rkt_partition_ &&
        last_part_ < tracker_.size()) {
      p = last_part_;  // messages come in runs of one partition
    } else {
      p = find_partition(rd_kafka_topic_name(m->rkt), m->partition);
      last_rkt_ = p ? m->rkt : nullptr;
      last_rkt_partition_ = m->partition;
    }
    if (!p || !tracker_.accepting(*p)) {
      continue;  // revoked, or waiting to be read again: not tracked, not committed
    }
    d.skip = false;
    d.part = *p;
  }
  // Decoding is the hot path: shared between this thread and the pool's helpers.
  decode_pool_->run(
      n, [this, msgs](common::JsonDecoder& decoder, std::size_t begin, std::size_t end) {
        WireKinds::Slot& slot = *slots_[decode_pool_->index_of(decoder)];
        for (std::size_t i = begin; i < end; ++i) {
          Decoded& d = decoded_[i];
          if (d.skip) {
            continue;
          }
          const rd_kafka_message_t* m = msgs[i];
          if (m->payload == nullptr) {
            d.ok = false;
            d.error = "empty message (null value)";
          } else {
            slot.begin(m);
            d.ok = decoder.decode(std::string_view(static_cast<const char*>(m->payload), m->len),
                                  d.record, d.error, slot);
            if (!d.ok && !d.record.kind.empty() && d.error.rfind("field '", 0) == 0) {
              d.error = "kind '" + d.record.kind + "': " + d.error;
            }
          }
        }
      });

  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < n; ++i) {
    Decoded& d = decoded_[i];
    if (d.skip) {
      continue;
    }
    rd_kafka_message_t* m = msgs[i];
    const Ref ref = tracker_.track(d.part, m->offset);
    const std::string_view value(static_cast<const char*>(m->payload),
                                 m->payload != nullptr ? m->len : 0);
    const std::string_view key(static_cast<const char*>(m->key),
                               m->key != nullptr ? m->key_len : 0);
    if (d.ok) {
      if (current_.records.empty()) {
        current_since_ = Clock::now();
      }
      current_.records.push_back(std::move(d.record));
      d.taken = true;
      current_info_.refs.push_back(ref);
      current_info_.msgs.push_back(m);
      msgs[i] = nullptr;  // kept until the batch is acknowledged
      continue;
    }
    rd_kafka_headers_t* hdrs = nullptr;
    (void)rd_kafka_message_headers(m, &hdrs);
    limiter_.log(ctx(), sdk::LogLevel::warn, "dead-letter",
                 "message " + tracker_.topic(d.part) + "/" + std::to_string(m->partition) + "@" +
                     std::to_string(m->offset) + " goes to the dead-letter topic: " + d.error);
    ctx().counter("decode_errors").add();
    dlq_work_.push_back(make_dlq(ref, dlq_topic_for(tracker_.topic(d.part)), key, m->key != nullptr,
                                 value, hdrs, m->partition, d.error));
  }
}

sdk::Status KafkaSource::on_run() {
  decode_pool_ = std::make_unique<DecodePool>(decode_threads_, max_message_size_);
  slots_.clear();
  for (std::size_t i = 0; i < decode_pool_->size(); ++i) {
    slots_.push_back(std::make_unique<WireKinds::Slot>(*wire_kinds_));
  }
  auto waker = std::make_unique<FetchWaker>(consumer_.get(), prefetch_bytes_,
                                            &ctx().counter("fetch_wakeups"));
  msgs_.resize(std::min<std::size_t>(batch_size_, 10'000));
  current_.records.reserve(batch_size_);
  last_commit_ = Clock::now();
  bool aborted = false;
  while (!ctx().stop_requested()) {
    service();
    // A fatal error reaches the application as a consumed message (the error callback's events
    // are forwarded to the consumer queue): ask librdkafka directly.
    char fatal_reason[256];
    if (hooks_->fatal() ||
        rd_kafka_fatal_error(consumer_.get(), fatal_reason, sizeof fatal_reason) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!fenced()) {
        return sdk::Status::error("the Kafka consumer hit a fatal error");
      }
      waker.reset();
      sdk::Status s = rejoin_as_dynamic_member();
      if (!s) {
        return s;
      }
      waker = std::make_unique<FetchWaker>(consumer_.get(), prefetch_bytes_,
                                           &ctx().counter("fetch_wakeups"));
      continue;
    }
    std::int64_t in_flight = 0;
    {
      std::unique_lock lock(mu_);
      in_flight = tracker_.in_flight();
      if (in_flight >= max_in_flight_ && current_.records.empty()) {
        cv_.wait_for(lock, std::chrono::milliseconds(50));
        in_flight = tracker_.in_flight();
      }
    }
    if (in_flight >= max_in_flight_) {
      if (!current_.records.empty()) {
        if (!emit_current()) {
          aborted = true;
          break;
        }
        continue;
      }
      const auto now = Clock::now();
      if (cap_since_ == Clock::time_point{}) {
        cap_since_ = now;
      }
      // Still polling (for rebalances and the session) but with partitions paused.
      if (!cap_paused_ && now - cap_since_ > std::chrono::seconds(1)) {
        set_cap_pause(true);
      }
      if (!cap_paused_) {
        continue;
      }
    } else {
      cap_since_ = {};
      if (cap_paused_ && in_flight <= max_in_flight_ / 2) {
        set_cap_pause(false);
      }
    }
    std::size_t room = batch_size_ - current_.records.size();
    {
      room = std::min<std::size_t>(
          room, static_cast<std::size_t>(std::max<std::int64_t>(1, max_in_flight_ - in_flight)));
    }
    room = std::clamp<std::size_t>(room, 1, msgs_.size());
    int timeout_ms = 100;
    if (!current_.records.empty()) {
      // Rounded up: a deadline less than 1 ms away must not become a busy loop of 0 ms waits.
      const auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(
          current_since_ + batch_timeout_ - Clock::now());
      timeout_ms =
          static_cast<int>(std::clamp<std::int64_t>((left_us.count() + 999) / 1000, 0, 100));
    }
    const ssize_t n = rd_kafka_consume_batch_queue(queue_, timeout_ms, msgs_.data(), room);
    if (n > 0) {
      std::size_t bytes = 0;
      for (ssize_t i = 0; i < n; ++i) {
        const rd_kafka_message_t* m = msgs_[static_cast<std::size_t>(i)];
        bytes += m->len + m->key_len;
      }
      waker->observe(rd_kafka_queue_length(queue_), static_cast<std::size_t>(n), bytes);
      handle_messages(msgs_.data(), static_cast<std::size_t>(n));
      for (ssize_t i = 0; i < n; ++i) {
        if (msgs_[static_cast<std::size_t>(i)] != nullptr) {
          rd_kafka_message_destroy(msgs_[static_cast<std::size_t>(i)]);
        }
      }
    }
    if (!current_.records.empty() && (current_.records.size() >= batch_size_ ||
                                      Clock::now() - current_since_ >= batch_timeout_)) {
      if (!emit_current()) {
        aborted = true;
        break;
      }
    }
  }
  waker.reset();  // before the consumer closes
  if (!aborted) {
    (void)emit_current();
  }
  // Stop: wait for what is in flight, commit it, leave the group.
  {
    std::vector<std::uint32_t> all;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (std::uint32_t i = 0; i < tracker_.size(); ++i) {
        all.push_back(i);
      }
    }
    if (!aborted) {
      wait_for_partitions(all, Clock::now() + drain_timeout_);
    }
    commit(true, nullptr);
  }
  const rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ctx().warn(std::string("closing the consumer: ") + rd_kafka_err2str(err));
  }
  rd_kafka_flush(dlq_.get(), 2000);
  ctx().info("stopped; dead-lettered " + std::to_string(dead_lettered_->get()) + " messages");
  return sdk::Status::ok();
}

}  // namespace webmon::plugins::kafka_source
