// Compile check: webmon/sdk/version.hpp is self-contained and warning-free.
#include "webmon/sdk/version.hpp"
