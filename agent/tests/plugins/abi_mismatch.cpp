// A deliberately broken plugin: claims SDK ABI major 99. The host must refuse it before
// calling anything but the entry point.
#include "webmon/sdk/plugin.hpp"

namespace {
const webmon::sdk::PluginDescriptor kDescriptor{
    99, 0, WEBMON_SDK_BUILD_KEY, "abi_mismatch", webmon::sdk::PluginKind::sink, "0.0.1",
    "test plugin with a wrong ABI major", nullptr, 0, nullptr, nullptr, nullptr};
}  // namespace

extern "C" WEBMON_EXPORT const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept {
  return &kDescriptor;
}
