// Compile check: webmon/sdk/testing.hpp is self-contained and warning-free.
#include "webmon/sdk/testing.hpp"
