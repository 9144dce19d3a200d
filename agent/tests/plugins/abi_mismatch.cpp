// A deliberately incompatible plugin: its ABI stamp claims SDK ABI major 99. The host must
// refuse it from the stamp alone, without loading it: its constructor would abort the test.
#include <cstdlib>

#include "webmon/sdk/plugin.hpp"

extern "C" WEBMON_EXPORT const webmon::sdk::AbiStamp webmon_plugin_abi_stamp;
extern "C" WEBMON_EXPORT const webmon::sdk::AbiStamp webmon_plugin_abi_stamp{
    "WEBMONP", sizeof(webmon::sdk::AbiStamp), 99, 0, WEBMON_SDK_BUILD_KEY};

extern "C" WEBMON_EXPORT const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept {
  std::abort();
}

namespace {
[[gnu::constructor]] void never_loaded() { std::abort(); }
}  // namespace
