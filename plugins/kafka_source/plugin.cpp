// kafka_source plugin entry point.
#include "kafka_source.hpp"

WEBMON_PLUGIN_SOURCE(webmon::plugins::kafka_source::KafkaSource, "kafka_source", "0.1.0",
                     "Consumes records from Kafka topics in a consumer group, at-least-once "
                     "(commits only what every sink acknowledged; bad messages to a DLQ)",
                     webmon::plugins::kafka_source::kOptions,
                     webmon::sdk::emits(webmon::plugins::kafka_source::kKinds))
