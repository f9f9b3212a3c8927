// Fills device buffers with pseudo-random values in [-1, 1) without a host round trip (benchmarks only).
#pragma once

#include <cstdint>

#include "pagedattn/tensor.h"

namespace pagedattn::bench {

void fill_random(const TensorView& t, uint64_t seed);

}  // namespace pagedattn::bench
