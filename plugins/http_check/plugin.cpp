// http_check plugin entry point: the descriptor (options table in options.hpp) and factory.
#include "http_check.hpp"
#include "options.hpp"
#include "webmon/common/http_check_kind.hpp"

WEBMON_PLUGIN_SOURCE(webmon::plugins::http_check::HttpCheckSource, "http_check", "0.1.0",
                     "Checks HTTP(S) targets on their own intervals (libcurl multi, one thread): "
                     "status, body regex, phase timings, TLS certificate expiry",
                     webmon::plugins::http_check::kOptions,
                     webmon::sdk::emits(webmon::common::kHttpCheckKinds))
