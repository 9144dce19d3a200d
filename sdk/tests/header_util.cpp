// Compile check: webmon/sdk/util.hpp is self-contained and warning-free.
#include "webmon/sdk/util.hpp"
