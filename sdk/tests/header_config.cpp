// Compile check: webmon/sdk/config.hpp is self-contained and warning-free.
#include "webmon/sdk/config.hpp"
