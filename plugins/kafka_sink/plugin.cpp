// kafka_sink plugin entry point.
#include "kafka_sink.hpp"

WEBMON_PLUGIN_SINK(webmon::plugins::kafka_sink::KafkaSink, "kafka_sink", "0.1.0",
                   "Writes records to a Kafka topic (JSON wire format, idempotent producer, "
                   "acknowledged when the broker confirmed them)",
                   webmon::plugins::kafka_sink::kOptions, webmon::sdk::KindFacts{})
