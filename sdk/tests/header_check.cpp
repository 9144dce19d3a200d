// Compile check: webmon/sdk/check.hpp is self-contained and warning-free.
#include "webmon/sdk/check.hpp"
