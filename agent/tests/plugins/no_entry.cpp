// A shared object that is not a webmon plugin: no entry point. Its constructor aborts, so a
// host that loaded it to find out would crash the test.
#include <cstdlib>

extern "C" __attribute__((visibility("default"))) int webmon_not_a_plugin() { return 42; }

namespace {
[[gnu::constructor]] void never_loaded() { std::abort(); }
}  // namespace
