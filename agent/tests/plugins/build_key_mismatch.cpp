// A deliberately incompatible plugin: right ABI version, foreign C++ build key. Refused from
// its stamp, never loaded (its constructor would abort the test).
#include <cstdlib>

#include "webmon/sdk/plugin.hpp"

extern "C" WEBMON_EXPORT const webmon::sdk::AbiStamp webmon_plugin_abi_stamp;
extern "C" WEBMON_EXPORT const webmon::sdk::AbiStamp webmon_plugin_abi_stamp{
    "WEBMONP", sizeof(webmon::sdk::AbiStamp), WEBMON_SDK_ABI_MAJOR, WEBMON_SDK_ABI_MINOR,
    "libc++-ptr4"};

extern "C" WEBMON_EXPORT const webmon::sdk::PluginDescriptor* webmon_plugin_entry() noexcept {
  std::abort();
}

namespace {
[[gnu::constructor]] void never_loaded() { std::abort(); }
}  // namespace
