// The prefill side of a varlen CUDA paged_attention call (private to the CUDA backend): sequences with two
// or more query rows. backend.cpp forks it off the caller's stream before it launches the decode kernel
// (which takes the one-row sequences of the same call, prefill_params.h) and joins it back afterwards, so
// that in a mixed batch the decode CTAs fill the SMs that the prefill tiles leave idle.
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/prefill_launch.h"
#include "pagedattn/attention.h"

namespace pagedattn::cuda {

// Builds the call's work list on the device from query_start (no host copy needed, graph-capturable) and
// runs `launcher`'s prefill kernel over it on `stream`. Takes stream-ordered scratch memory.
void launch_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args,
                           const AttentionShape& shape, cudaStream_t stream);

// launch_varlen_prefill on a side stream (one per host thread and device) that waits for `stream`'s work so
// far; join_varlen_prefill makes `stream` wait for it. Both are graph-capturable (fork/join by events).
void fork_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args, const AttentionShape& shape,
                         cudaStream_t stream);
void join_varlen_prefill(cudaStream_t stream);

}  // namespace pagedattn::cuda
