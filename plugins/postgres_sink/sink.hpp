// postgres_sink: stores records of every declared kind in PostgreSQL, one table per kind,
// exactly once per (time, id).
//
// write() runs on the host's delivery thread and stores the batch synchronously: one
// transaction per batch that COPYs each kind's rows into <schema>.<kind> (created or extended
// from the kind's declaration on first sight) and the invalid records into <schema>.rejected,
// then resolves the Ack: delivered after COMMIT, retryable on a connection or server error (the
// host retries the same batch with backoff; the sink reconnects on the next write). A replay
// adds nothing (primary key (time, id)); rows PostgreSQL refuses are isolated by splitting the
// batch. Buffering, batching, retry and backoff are the host's (see README.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "options.hpp"
#include "pg.hpp"
#include "rows.hpp"
#include "schema.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::postgres_sink {

class PostgresSink final : public sdk::Sink {
 public:
  PostgresSink(const sdk::ConfigNode& config, sdk::Context& ctx);
  ~PostgresSink() override;
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  [[nodiscard]] const Options& options() const noexcept { return options_; }

 protected:
  sdk::Status on_start() override;
  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override;
  sdk::Status on_flush(std::chrono::milliseconds timeout) override;

 private:
  using Clock = std::chrono::steady_clock;

  /// What the sink knows about one kind: its declaration, layout, table and partitions.
  struct KindState {
    KindState(const std::string& schema, const std::string& kind,
              std::chrono::milliseconds interval)
        : partitions(schema, kind, interval) {}
    const sdk::KindSpec* spec = nullptr;  // the declaration the layout was made from
    std::uint32_t version = 0;
    std::size_t field_count = 0;
    std::uint64_t checked_batch = 0;  // the batch in which the declaration was last looked up
    Layout layout;
    std::string refusal;  // non-empty: every record of this kind goes to rejected with it
    std::string copy_sql, stage_sql, stage_copy_sql, stage_insert_sql;
    bool stage_ready = false;  // the session's staging table exists and matches the layout
    Partitions partitions;
  };
  struct Row {
    KindState* kind;
    const sdk::Record* record;
  };
  struct Reject {
    const sdk::Record* record;
    std::string reason;
  };

  /// Stores the batch (one transaction). Throws PgError when it could not be stored now.
  void write_batch(const std::vector<sdk::Record>& records);
  /// The state of `kind` with its table in sync with the current declaration, or nullptr with
  /// `reason` set when records of this kind cannot have a table.
  KindState* kind_state(const std::string& kind, std::string& reason);
  void sync(KindState& k, const sdk::KindSpec& spec);
  void commit_isolating(const std::vector<Row>& valid, std::vector<Reject> rejects);
  void isolate(const std::vector<Row>& rows, std::vector<Reject>& out);
  /// One transaction: rows (fast COPY, or staging + ON CONFLICT after a duplicate) + rejects.
  void commit(const std::vector<Row>& rows, const std::vector<Reject>& rejects);
  void commit_once(const std::vector<Row>& rows, const std::vector<Reject>& rejects, bool staging);
  void store_reject_alone(const Reject& reject);
  void ensure_connected();
  void maintenance();
  /// Runs maintenance when due (at connect, or at the start of a write); a failure that left the
  /// connection usable is logged and retried in 30 s.
  void maintenance_if_due();
  void reset_connection();
  [[nodiscard]] TimeWindow time_window() const;
  void note_failure(const std::string& message);
  void note_success();
  std::string summary() const;

  Options options_;
  std::string schema_sql_;  // quoted schema
  std::string reject_sql_;
  sdk::LogLimiter limiter_{std::chrono::seconds(30)};

  std::unique_ptr<Connection> conn_;
  std::map<std::string, std::unique_ptr<KindState>, std::less<>> kinds_;
  KindState* last_kind_ = nullptr;  // the kind of the previous record (records come in runs)
  std::uint64_t batch_seq_ = 0;
  std::string buf_;
  int staging_runs_ = 0;
  bool connected_once_ = false;
  Clock::time_point next_maintenance_{};
  Clock::time_point failing_since_{};
  std::uint64_t failures_ = 0;
  std::vector<double> commit_ms_;  // BEGIN..COMMIT of each transaction
  std::uint64_t rows_stored_ = 0;
  std::uint64_t rows_duplicate_ = 0;
  std::uint64_t rows_rejected_ = 0;

  sdk::Counter* c_inserted_;
  sdk::Counter* c_duplicate_;
  sdk::Counter* c_rejected_;
  sdk::Counter* c_transactions_;
  sdk::Counter* c_retries_;
  sdk::Counter* c_reconnects_;
  sdk::Counter* c_split_;
  sdk::Counter* c_partitions_created_;
  sdk::Counter* c_partitions_dropped_;
  sdk::Counter* c_tables_created_;
  sdk::Counter* c_columns_added_;
};

}  // namespace webmon::plugins::postgres_sink
