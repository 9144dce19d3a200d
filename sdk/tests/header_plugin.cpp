// Compile check: webmon/sdk/plugin.hpp is self-contained and warning-free.
#include "webmon/sdk/plugin.hpp"
