// Compile check: webmon/sdk/kind.hpp is self-contained and warning-free.
#include "webmon/sdk/kind.hpp"
