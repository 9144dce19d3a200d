// postgres_sink: stores http_check records in PostgreSQL, exactly once per (time, id).
//
// write() queues a batch with its Ack; a writer thread groups queued batches into transactions
// of up to batch_size rows (or whatever waited flush_interval), COPYs them into
// <schema>.http_check and commits, and only then resolves the batches' Acks as delivered.
// Invalid records go to <schema>.rejected in the same transaction. Connection loss and server
// restarts are retried with backoff (same rows, no loss; the primary key (time, id) makes a
// retry add nothing); rows PostgreSQL refuses are isolated by splitting the batch.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "options.hpp"
#include "pg.hpp"
#include "rows.hpp"
#include "schema.hpp"
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
  struct Pending {
    const std::vector<sdk::Record>* records;  // valid until `ack` is resolved
    sdk::Ack ack;
    Clock::time_point enqueued;
  };
  struct Reject {
    const sdk::Record* record;
    std::string reason;
  };

  void run_writer();
  /// Stores the rows, retrying until success or abort. Returns false when aborted.
  bool deliver(const std::vector<const sdk::Record*>& rows);
  void write_rows(const std::vector<const sdk::Record*>& rows);
  void commit_isolating(std::vector<const sdk::Record*> valid, std::vector<Reject> rejects);
  void isolate(const std::vector<const sdk::Record*>& rows, std::vector<Reject>& out);
  /// One transaction: rows (fast COPY, or staging + ON CONFLICT after a duplicate) + rejects.
  void commit(const std::vector<const sdk::Record*>& rows, const std::vector<Reject>& rejects);
  void commit_once(const std::vector<const sdk::Record*>& rows, const std::vector<Reject>& rejects,
                   bool staging);
  void store_reject_alone(const Reject& reject);
  void ensure_connected();
  void maintenance();
  void reset_connection();
  bool backoff_sleep(std::chrono::milliseconds delay);
  [[nodiscard]] TimeWindow time_window() const;
  void note_failure(const std::string& message);
  void note_success();
  std::string summary() const;

  Options options_;
  std::string schema_sql_;   // quoted schema
  std::string copy_sql_;     // COPY <schema>.http_check (...) FROM STDIN
  std::string stage_copy_sql_;
  std::string stage_insert_sql_;
  std::string reject_sql_;

  // Shared between write()/flush() and the writer thread.
  std::mutex mu_;
  std::condition_variable cv_work_;   // writer waits for work
  std::condition_variable cv_space_;  // write() waits for buffer space
  std::condition_variable cv_idle_;   // flush() waits for everything to be stored
  std::deque<Pending> queue_;
  std::size_t queued_rows_ = 0;
  std::vector<sdk::Ack> inflight_acks_;
  bool flushing_ = false;
  bool closing_ = false;
  bool abort_ = false;
  std::string last_error_;
  std::thread writer_;

  std::mutex conn_mu_;  // guards conn_ pointer swaps against cancel() from flush()
  std::unique_ptr<Connection> conn_;

  // Writer-thread state.
  Partitions partitions_;
  std::string buf_;
  int staging_runs_ = 0;
  bool connected_once_ = false;
  Clock::time_point next_maintenance_{};
  Clock::time_point failing_since_{};
  Clock::time_point last_failure_log_{};
  std::uint64_t failures_ = 0;
  std::vector<double> commit_ms_;  // BEGIN..COMMIT of each transaction
  std::vector<double> age_ms_;     // oldest row's wait: enqueue..COMMIT
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
};

}  // namespace webmon::plugins::postgres_sink
