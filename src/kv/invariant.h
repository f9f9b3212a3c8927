// Invariant checks of the KV-cache manager (private to src/kv). A broken invariant is a bug in this library,
// never bad input, so it throws pagedattn::Error with ErrorKind::runtime.
#pragma once

#include "core/check.h"

#define PA_CHECK_INVARIANT(cond, ...) PA_CHECK(cond, ::pagedattn::ErrorKind::runtime, "invariant broken: " __VA_ARGS__)
