// A deliberately broken plugin: right ABI version, foreign C++ build key.
#include "webmon/sdk/plugin.hpp"

namespace {
const webmon::sdk::PluginDescriptor kDescriptor{
    WEBMON_SDK_ABI_MAJOR, WEBMON_SDK_ABI_MINOR, "libc++-ptr4", "build_key_mismatch",
    webmon::sdk::PluginKind::sink, "0.0.1", "test plugin with a foreign build key", nullptr, 0,
    nullptr, nullptr, nullptr};
}  // namespace

extern "C" WEBMON_EXPORT const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept {
  return &kDescriptor;
}
