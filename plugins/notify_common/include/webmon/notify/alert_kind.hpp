// The `alert` record kind: declared once here, emitted by the alert transform and read by the
// notifying sinks (webhook_sink, email_sink). plugins/alert/README.md documents it.
#pragma once

#include "webmon/sdk/kind.hpp"

namespace webmon::notify {

using sdk::FieldSpec;
using sdk::FieldType;

inline constexpr FieldSpec kAlertFields[] = {
    {"target", FieldType::string, false, "", "target name of the check results"},
    {"check_kind", FieldType::string, false, "", "kind of the check results (http_check, ...)"},
    {"state", FieldType::string, false, "", "firing or resolved"},
    {"incident_id", FieldType::string, false, "",
     "UUIDv7 made when the incident started firing; the same on its repeats and its resolved"},
    {"since", FieldType::timestamp, false, "UTC", "time of the incident's first failed check"},
    {"duration_ms", FieldType::int64, false, "ms", "from since to this notification's check"},
    {"consecutive_failures", FieldType::int64, false, "",
     "firing: consecutive failed checks now (most of any location); resolved: the incident's "
     "peak"},
    {"locations_failing", FieldType::int64, false, "",
     "agents currently seeing the target failing"},
    {"repeat", FieldType::boolean, false, "", "a repeated firing (repeat_interval)"},
    {"last_error", FieldType::string, true, "", "error class of the last failed check"},
    {"last_error_message", FieldType::string, true, "", "error message of the last failed check"},
    {"last_status_code", FieldType::int64, true, "", "HTTP status of the last failed check"},
    {"agent", FieldType::string, false, "", "the agent that decided the alert (agent.name)"},
    {"labels", FieldType::string_map, false, "", "labels of the check result"},
};

inline constexpr sdk::KindSpec kAlertKind = sdk::make_kind(
    "alert", 1, kAlertFields, "target", "an alert decision: firing or resolved, per incident");

}  // namespace webmon::notify
