// Compile check: webmon/sdk/scheduler.hpp is self-contained and warning-free.
#include "webmon/sdk/scheduler.hpp"
