// The status page's history from PostgreSQL (see pg_history.hpp).
#include "pg_history.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

namespace webmon::plugins::status_page {
namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string one_line(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  for (char& c : s) {
    if (c == '\n') {
      c = ' ';
    }
  }
  return s;
}

Result query(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  Result r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    throw HistoryError("query failed: " + one_line(PQerrorMessage(conn)));
  }
  return r;
}

std::int64_t to_i64(const PGresult* r, int row, int col) {
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}

std::string to_str(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

std::string iso(std::int64_t micros) {
  // Seconds since the epoch as text; PostgreSQL turns it into a timestamptz.
  return std::to_string(micros / 1'000'000);
}

}  // namespace

std::size_t load_history(const HistorySource& source, std::int64_t now_us, StatusModel& model) {
  // Our defaults first; the conninfo's own settings (expanded from "dbname") override them.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "webmon status_page", source.conninfo.c_str(), nullptr};
  Conn conn(PQconnectdbParams(keys, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw HistoryError("cannot connect: " + one_line(PQerrorMessage(conn.get())));
  }
  const std::string s = quote_ident(source.schema);
  const std::int64_t now_hour = hour_of(now_us);
  const std::int64_t from_us =
      (now_hour - static_cast<std::int64_t>(kBucketCount) + 1) * kHourMicros;
  const std::string from = iso(from_us);
  const std::string to = iso(now_us + 1'000'000);
  const auto epoch_us = [](const char* column) {
    return std::string("(extract(epoch FROM ") + column + ") * 1000000)::bigint";
  };
  const std::string from_expr = "to_timestamp($1::double precision)";
  const std::string to_expr = "to_timestamp($2::double precision)";

  std::map<std::string, TargetState, std::less<>> targets;
  auto target = [&](const std::string& name) -> TargetState& {
    auto [it, inserted] = targets.try_emplace(name);
    if (inserted) {
      it->second.name = name;
    }
    return it->second;
  };

  // The targets: a loose index scan over the (target, time) index, fast whatever the size;
  // then per target an index scan for its latest check, last failure and last N checks.
  const std::string targets_cte = "WITH RECURSIVE t AS ((SELECT target FROM " + s +
                                  ".http_check ORDER BY target LIMIT 1) "
                                  "UNION ALL SELECT (SELECT h.target FROM " +
                                  s +
                                  ".http_check h WHERE h.target > t.target "
                                  "ORDER BY h.target LIMIT 1) FROM t WHERE t.target IS NOT NULL) ";
  const std::string window =
      "h.target = t.target AND h.\"time\" >= " + from_expr + " AND h.\"time\" < " + to_expr;

  Result latest =
      query(conn.get(),
            targets_cte + "SELECT t.target, l.* FROM t CROSS JOIN LATERAL (SELECT " +
                epoch_us("h.\"time\"") +
                ", h.success, coalesce(h.status_code, 0), "
                "h.response_time_ms, h.url, coalesce(" +
                epoch_us("h.tls_cert_not_after") + ", 0), coalesce(h.labels ->> $3, '') FROM " + s +
                ".http_check h WHERE " + window +
                " ORDER BY h.\"time\" DESC LIMIT 1) l WHERE t.target IS NOT NULL",
            {from, to, source.group_label});
  for (int i = 0; i < PQntuples(latest.get()); ++i) {
    TargetState& t = target(to_str(latest.get(), i, 0));
    t.last_time_us = to_i64(latest.get(), i, 1);
    t.last_success = std::string_view(PQgetvalue(latest.get(), i, 2)) == "t";
    t.last_status = static_cast<int>(to_i64(latest.get(), i, 3));
    t.last_ms = std::strtod(PQgetvalue(latest.get(), i, 4), nullptr);
    t.url = strip_credentials(to_str(latest.get(), i, 5));
    t.cert_not_after_us = to_i64(latest.get(), i, 6);
    t.group = source.group_label.empty() ? std::string() : to_str(latest.get(), i, 7);
  }

  // Hourly buckets for 7 days (counts only: cheaper than the summary's percentiles).
  Result buckets =
      query(conn.get(),
            "SELECT target, floor(extract(epoch FROM \"time\") / 3600)::bigint AS hour, count(*), "
            "count(*) FILTER (WHERE NOT success) FROM " +
                s + ".http_check WHERE \"time\" >= " + from_expr + " AND \"time\" < " + to_expr +
                " GROUP BY 1, 2",
            {from, to});
  for (int i = 0; i < PQntuples(buckets.get()); ++i) {
    auto it = targets.find(to_str(buckets.get(), i, 0));
    if (it == targets.end()) {
      continue;
    }
    TargetState& t = it->second;
    const std::int64_t hour = to_i64(buckets.get(), i, 1);
    Bucket& b = t.buckets[static_cast<std::size_t>(hour % static_cast<std::int64_t>(kBucketCount))];
    b.hour = static_cast<std::int32_t>(hour);
    b.checks = static_cast<std::uint32_t>(to_i64(buckets.get(), i, 2));
    b.failures = static_cast<std::uint32_t>(to_i64(buckets.get(), i, 3));
    t.checks += b.checks;
  }

  // The last failure of each target (the partial index on failures).
  Result errors =
      query(conn.get(),
            targets_cte + "SELECT t.target, e.* FROM t CROSS JOIN LATERAL (SELECT " +
                epoch_us("h.\"time\"") +
                ", coalesce(h.error, 'failed'), "
                "coalesce(h.error_message, '') FROM " +
                s + ".http_check h WHERE " + window +
                " AND NOT h.success ORDER BY h.\"time\" DESC LIMIT 1) e WHERE t.target IS NOT NULL",
            {from, to});
  for (int i = 0; i < PQntuples(errors.get()); ++i) {
    auto it = targets.find(to_str(errors.get(), i, 0));
    if (it == targets.end()) {
      continue;
    }
    TargetState& t = it->second;
    t.last_error_time_us = to_i64(errors.get(), i, 1);
    t.last_error = to_str(errors.get(), i, 2);
    std::string message = strip_credentials(to_str(errors.get(), i, 3));
    if (message.size() > model.options().max_error_chars) {
      message.resize(model.options().max_error_chars);
    }
    t.last_error_message = std::move(message);
  }

  // The last N response times of each target, oldest first.
  Result samples =
      query(conn.get(),
            targets_cte +
                "SELECT t.target, x.success, x.response_time_ms FROM t CROSS JOIN LATERAL "
                "(SELECT h.\"time\", h.success, h.response_time_ms FROM " +
                s + ".http_check h WHERE " + window +
                " ORDER BY h.\"time\" DESC LIMIT $3::int) x WHERE t.target IS NOT NULL "
                "ORDER BY t.target, x.\"time\"",
            {from, to, std::to_string(model.options().sample_capacity)});
  for (int i = 0; i < PQntuples(samples.get()); ++i) {
    auto it = targets.find(to_str(samples.get(), i, 0));
    if (it == targets.end()) {
      continue;
    }
    TargetState& t = it->second;
    t.samples.push_back(
        Sample{static_cast<float>(std::strtod(PQgetvalue(samples.get(), i, 2), nullptr)),
               std::string_view(PQgetvalue(samples.get(), i, 1)) == "t"});
    t.sample_count = static_cast<std::uint32_t>(t.samples.size());
  }

  std::size_t restored = 0;
  for (auto& [name, t] : targets) {
    t.sample_next = 0;
    model.restore(std::move(t));
    ++restored;
  }
  return restored;
}

}  // namespace webmon::plugins::status_page
