// Compile check: webmon/sdk/record.hpp is self-contained and warning-free.
#include "webmon/sdk/record.hpp"
