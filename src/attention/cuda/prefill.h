// The prefill side of a varlen CUDA paged_attention call (private to the CUDA backend): sequences with two
// or more query rows. backend.cpp launches it before the decode kernel, which takes the one-row sequences
// of the same call (prefill_params.h describes the routing).
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/prefill_launch.h"
#include "pagedattn/attention.h"

namespace pagedattn::cuda {

// Builds the call's work list on the device from query_start (no host copy needed, graph-capturable) and
// runs `launcher`'s prefill kernel over it on `stream`. Takes stream-ordered scratch memory.
void launch_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args,
                           const AttentionShape& shape, cudaStream_t stream);

// Brackets the decode launches of a varlen call: fork_varlen_prefill runs launch_varlen_prefill, and
// join_varlen_prefill follows the decode launches. By default the prefill runs on `stream` itself, before
// the decode kernel (join does nothing). With PAGEDATTN_TUNE_VARLEN_FORK (a benchmark knob) it runs on a
// high-priority side stream (one per host thread and device), forked from and joined back into `stream`
// by events (graph-capturable), concurrently with the decode kernel: measured slower on a mixed batch
// without the priority (the decode CTAs took the SMs first).
void fork_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args, const AttentionShape& shape,
                         cudaStream_t stream);
void join_varlen_prefill(cudaStream_t stream);

}  // namespace pagedattn::cuda
