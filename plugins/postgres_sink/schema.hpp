// Schema management for postgres_sink: forward migrations recorded in <schema>.schema_version,
// one table per record kind created and extended from the kind's declaration (KindTable), time
// partitions of every kind's table created ahead and on demand, and retention.
//
// Every DDL runs in a transaction holding a transaction-scoped advisory lock derived from the
// schema name, so several sinks (or agents) starting at once serialize instead of racing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "pg.hpp"
#include "rows.hpp"

namespace webmon::plugins::postgres_sink {

/// One forward migration: applied once, in order, recorded in schema_version.
struct Migration {
  int version;
  const char* description;
  std::string sql;  ///< may contain several statements
};

/// The migrations for `schema`, oldest first.
std::vector<Migration> migrations(const std::string& schema);

/// Brings the schema to the newest version. Returns the versions applied (empty when it was
/// current). Throws PgError.
std::vector<int> migrate(Connection& conn, const std::string& schema);

/// The DDL of a kind's table (partitioned by day on `time`, primary key (time, id)), its
/// indexes (key field and time; failures) and, when the kind has `success` and a duration, its
/// views <kind>_hourly, <kind>_daily and function <kind>_summary.
std::string create_table_sql(const std::string& schema, const Layout& layout);
/// The views and the summary function of a kind with views (CREATE OR REPLACE).
std::string views_sql(const std::string& schema, const Layout& layout);

/// What sync_kind_table() found and did.
struct TableSync {
  bool created = false;
  std::vector<std::string> added;  ///< columns added (ALTER TABLE … ADD COLUMN)
  /// Why records of this kind cannot be stored (a field whose column has another type); empty
  /// when they can. Names the kind, the field, the column's type and the declared type.
  std::string conflict;
};

/// Makes <schema>.<kind> match the layout: creates it when missing, adds missing columns,
/// relaxes NOT NULL where the declaration allows null, never changes a column's type. DDL runs
/// under the schema's advisory lock; a catalog read without the lock comes first, so a table
/// that already matches costs one query. Throws PgError.
TableSync sync_kind_table(Connection& conn, const std::string& schema, const Layout& layout);

/// The partitioned tables of the schema (every kind's table).
std::vector<std::string> kind_tables(Connection& conn, const std::string& schema);

/// Partitions of <schema>.<table>: [lower, upper) in microseconds, by lower bound.
class Partitions {
 public:
  Partitions(std::string schema, std::string table, std::chrono::milliseconds interval)
      : schema_(std::move(schema)),
        table_(std::move(table)),
        interval_us_(interval.count() * 1000) {}

  /// Reloads the known partitions from the catalog.
  void load(Connection& conn);
  /// Whether a partition is known to hold `micros`.
  [[nodiscard]] bool covers(std::int64_t micros) const noexcept;
  /// Creates the partition for `micros` unless one exists (aligned to the interval, clipped so
  /// it never overlaps an existing one). Returns true when it created one.
  bool ensure(Connection& conn, std::int64_t micros);
  /// Creates partitions from `from` through `from + ahead` intervals.
  int ensure_ahead(Connection& conn, std::int64_t from_micros, int ahead);
  /// Drops partitions whose upper bound is at or before `cutoff`. Returns their names.
  std::vector<std::string> drop_older_than(Connection& conn, std::int64_t cutoff_micros);
  /// Forgets what is known (after an error that suggests the catalog changed).
  void clear() noexcept { ranges_.clear(); }

  /// The partition name for a lower bound: <table>_pYYYYMMDD or <table>_pYYYYMMDD_HHMM.
  static std::string name_for(const std::string& table, std::int64_t lower_micros);

 private:
  std::string schema_;
  std::string table_;
  std::int64_t interval_us_;
  std::map<std::int64_t, std::int64_t> ranges_;  // lower -> upper
};

/// The advisory lock key of a schema (both the lock and the key are visible in pg_locks).
std::string advisory_lock_sql(const std::string& schema);

}  // namespace webmon::plugins::postgres_sink
