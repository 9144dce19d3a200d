// Compile check: webmon/sdk/options.hpp is self-contained and warning-free.
#include "webmon/sdk/options.hpp"
