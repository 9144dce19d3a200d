// Internal to the wire format's encoder and decoder.
#pragma once

#include <string_view>

namespace webmon::common {

/// Names of the envelope keys, which a record field cannot take.
inline bool reserved_name(std::string_view name) {
  return name == "schema" || name == "kind" || name == "id" || name == "time" || name == "labels";
}

}  // namespace webmon::common
