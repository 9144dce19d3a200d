// A shared object that is not a webmon plugin: no entry point.
extern "C" __attribute__((visibility("default"))) int webmon_not_a_plugin() { return 42; }
