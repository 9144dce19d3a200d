// A plugin as the pre-1.0 SDK (0.1) built them: an entry point, no ABI stamp. Refused from
// the symbol table, never loaded (its constructor would abort the test).
#include <cstdlib>

extern "C" __attribute__((visibility("default"))) const void* webmon_plugin_entry() noexcept {
  return nullptr;
}

namespace {
[[gnu::constructor]] void never_loaded() { std::abort(); }
}  // namespace
