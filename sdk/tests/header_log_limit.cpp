// Compile check: webmon/sdk/log_limit.hpp is self-contained and warning-free.
#include "webmon/sdk/log_limit.hpp"
