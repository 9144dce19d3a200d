// An "older agent": this program is compiled with the agent's plugin loader built with
// -DWEBMON_HOST_ABI_MINOR=0, i.e. as the loader of an agent that provides SDK ABI 1.0.
// Usage: abi_old_loader <plugin.so>...; prints "loaded <name> (ABI M.m)" or "refused: <why>"
// per file; exits 0 when every file loaded, 1 otherwise.
#include <iostream>

#include "plugin_loader.hpp"

int main(int argc, char** argv) {
  int code = 0;
  for (int i = 1; i < argc; ++i) {
    try {
      const auto p = webmon::agent::load_plugin_file(argv[i]);
      std::cout << "loaded " << p.descriptor->name << " (ABI " << p.descriptor->abi_major << "."
                << p.descriptor->abi_minor << ")\n";
    } catch (const std::exception& e) {
      std::cout << "refused: " << e.what() << "\n";
      code = 1;
    }
  }
  return code;
}
