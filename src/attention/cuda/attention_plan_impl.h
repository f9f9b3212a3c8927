// AttentionPlan's state (private to the CUDA backend): device buffers sized from the limits at
// construction, and the last update's host-side summary that the launch needs.
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/decode_params.h"
#include "pagedattn/attention.h"

namespace pagedattn {

struct AttentionPlan::Impl {
  AttentionPlanLimits limits;
  Device device;
  int64_t target_ctas = 0;  // both from split_targets(SMs)
  int64_t unsplit_ctas = 0;
  int64_t ctas_per_item = 0;  // decode_ctas_per_item (decode_params.h)
  int64_t item_capacity = 0;

  // One device allocation: items | partial_begin | partial_count | planned_lens | partial_out | partial_lse.
  void* device_memory = nullptr;
  cuda::DecodeWorkItem* items = nullptr;
  int32_t* partial_begin = nullptr;
  int32_t* partial_count = nullptr;
  int32_t* planned_lens = nullptr;
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
  // Pinned staging of the first four arrays, uploaded in one copy; `uploaded` guards its reuse.
  void* staging = nullptr;
  size_t upload_bytes = 0;
  cudaEvent_t uploaded = nullptr;

  // The last update.
  int64_t num_seqs = -1;  // -1: never updated
  int64_t block_size = 0;
  int64_t num_items = 0;
  int64_t num_split_seqs = 0;
  int64_t total_context = 0;  // the sum of context_lens (the varlen launch picks its prefill kernel by the mean)
  int32_t chunk_pages = 0;
  // > 0 when every sequence has the same pages: the kernels then derive each item from its index (as for
  // calls without a plan) and skip loading the work list.
  int32_t uniform_splits = 0;
};

}  // namespace pagedattn
