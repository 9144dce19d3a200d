// Compile check: webmon/sdk/sdk.hpp is self-contained and warning-free.
#include "webmon/sdk/sdk.hpp"
