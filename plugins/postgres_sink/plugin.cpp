// postgres_sink plugin entry point: the descriptor and the factory (logic in sink.cpp).
#include "options.hpp"
#include "sink.hpp"

WEBMON_PLUGIN_SINK(webmon::plugins::postgres_sink::PostgresSink, "postgres_sink", "0.1.0",
                   "Stores http_check records in PostgreSQL (COPY, exactly once per (time, id), "
                   "partitioned by time, rejected records kept)",
                   webmon::plugins::postgres_sink::kOptions,
                   webmon::sdk::accepts(webmon::plugins::postgres_sink::kAcceptedKinds))
