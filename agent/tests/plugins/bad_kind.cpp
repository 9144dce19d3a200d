// A source whose kind declaration is invalid (which way: BAD_KIND_CASE). The agent refuses it
// at load, naming the file, the kind and the field; the plugin's code never runs.
#include <cstdlib>

#include "webmon/sdk/sdk.hpp"

namespace {

namespace sdk = webmon::sdk;

#if BAD_KIND_CASE == 1
// The same field twice.
constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"port", sdk::FieldType::int64, false, "", "port"},
    {"target", sdk::FieldType::string, false, "", "target name again"},
};
#elif BAD_KIND_CASE == 2
// A name the wire format's envelope uses.
constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"kind_hash", sdk::FieldType::string, true, "", "collides with the envelope"},
};
#else
// A field name that is not an identifier.
constexpr sdk::FieldSpec kFields[] = {
    {"target", sdk::FieldType::string, false, "", "target name"},
    {"Connect-Time", sdk::FieldType::float64, true, "ms", "not [a-z][a-z0-9_]*"},
};
#endif

constexpr sdk::KindSpec kKinds[] = {
    sdk::make_kind("bad_probe", 1, kFields, "target", "an invalid declaration")};

class BadKind final : public sdk::Source {
 public:
  BadKind(const sdk::ConfigNode& /*config*/, sdk::Context& /*ctx*/) { std::abort(); }

 protected:
  sdk::Status on_run() override { std::abort(); }
};

}  // namespace

WEBMON_PLUGIN_SOURCE(BadKind, "bad_kind", "0.0.1", "test source with an invalid kind declaration",
                     sdk::kNoOptions, sdk::emits(kKinds))
