// postgres_sink plugin entry point: the descriptor and the factory (logic in sink.cpp).
#include "options.hpp"
#include "sink.hpp"

WEBMON_PLUGIN_SINK(webmon::plugins::postgres_sink::PostgresSink, "postgres_sink", "0.2.0",
                   "Stores records of every declared kind in PostgreSQL, one table per kind "
                   "(COPY, exactly once per (time, id), partitioned by time, rejected records "
                   "kept)",
                   webmon::plugins::postgres_sink::kOptions, webmon::sdk::KindFacts{})
