// The prefill side of a varlen CUDA paged_attention call (private to the CUDA backend): sequences with two
// or more query rows. backend.cpp launches it before the decode kernel, on the same stream, which takes
// the one-row sequences of the same call (prefill_params.h describes the routing). Running the two
// concurrently (the prefill on a forked, high-priority stream) measured 10% slower on a mixed batch than
// one after the other: the decode CTAs and the prefill's persistent CTAs then compete for the same SMs.
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/prefill_launch.h"
#include "pagedattn/attention.h"

namespace pagedattn::cuda {

// Builds the call's work list on the device from query_start (no host copy needed, graph-capturable) and
// runs `launcher`'s prefill kernel over it on `stream`. Takes stream-ordered scratch memory.
void launch_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args,
                           const AttentionShape& shape, cudaStream_t stream);

}  // namespace pagedattn::cuda
