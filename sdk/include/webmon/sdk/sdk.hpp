// Umbrella header: everything a webmon plugin needs.
#pragma once

#include "webmon/sdk/check.hpp"
#include "webmon/sdk/config.hpp"
#include "webmon/sdk/kind.hpp"
#include "webmon/sdk/log_limit.hpp"
#include "webmon/sdk/options.hpp"
#include "webmon/sdk/plugin.hpp"
#include "webmon/sdk/record.hpp"
#include "webmon/sdk/scheduler.hpp"
#include "webmon/sdk/util.hpp"
#include "webmon/sdk/version.hpp"
