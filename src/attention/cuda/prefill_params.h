// Plain structs shared by the host launch code and the CUDA kernels of the varlen (prefill) path: the
// work list that prefill_tiles_kernel builds on the device from query_start, and the kernel arguments.
// No CUDA headers needed.
//
// Routing of a varlen call: sequences with one query row run on the decode kernel (memory bound, split-KV);
// sequences with two or more rows are cut into tiles of packed rows, each row one (query token, query head
// of the KV head's group) pair, and run on the prefill kernel; sequences with no rows run nowhere. The
// routing reads query_start on the device, so the caller needs no host copy of it.
#pragma once

#include <cstdint>

#include "attention/cuda/paged_params.h"

namespace pagedattn::cuda {

// Packed rows [row0, row0 + rows) of sequence seq's q_len * group rows, with the sequence's metadata as
// the builder read and checked it (the kernels read no other metadata than the block table).
struct alignas(16) PrefillWorkItem {
  int32_t seq;
  int32_t row0;  // tile index * tile_rows
  int32_t rows;  // <= tile_rows
  int32_t first_row;  // query_start[seq]
  int32_t q_len;
  int32_t context_len;
  int32_t unused[2];
};

// The work list in device memory, written by prefill_tiles_kernel, read by the prefill kernels. Units of
// work are (item, KV head) pairs; CTAs claim them in order through `next_unit` (dynamic scheduling).
struct PrefillWorkList {
  PrefillWorkItem* items;  // capacity: prefill_item_capacity(); each sequence's tiles last-first
  int32_t* num_items;
  int32_t* next_unit;  // zeroed by the builder
};

// Upper bound of the items of any call with these sizes: each sequence adds at most one partial tile.
constexpr int64_t prefill_item_capacity(int64_t num_tokens, int64_t num_seqs, int64_t group, int64_t tile_rows) {
  return (num_tokens * group + tile_rows - 1) / tile_rows + num_seqs;
}

struct PrefillTilesParams {
  const int32_t* query_start;
  const int32_t* context_lens;
  int32_t num_seqs, num_tokens, group_size, tile_rows, max_context_len, capacity;
  PrefillWorkList work;
  DeviceErrorRecord* error;
};

struct PrefillParams : PagedParams {
  bool causal;
  bool long_units;  // prefill_units_are_long(...): the launcher's choice of sm_90a kernel
  PrefillWorkList work;
};

// Whether a call's prefill units (a tile of packed rows x one KV head) see enough keys for the warp-specialized
// sm_90a kernel (key tiles of 128, one CTA per SM) rather than the N = 64 one (two CTAs per SM, whose extra
// CTAs in flight hide the start of short units). The host knows the mean query rows per sequence (num_tokens /
// num_seqs; decode rows count too) and, when the call has a plan, its sequences' mean context (0 without).
// Either at 1024 or more picks the long-unit kernel: prompts of 1024 tokens and more, and chunks on a long
// cache, whose units see most of it. On an H200 (bf16, Hq 32 Hkv 8, block 16; bench/results/cuda_h200.md,
// run 56), warp-specialized against N = 64 in us: 1 x 8192 1041 / 1325, 4 x 4096 1100 / 1351, 16 x 1024
// 346 / 409, 64 x 256 181 / 174; two chunks of 512 on contexts of 2048 (the mixed batch's prefill part) 70 / 89.
// The mean context counts decode rows too: a step of long decodes and short fresh prompts also takes the
// long-unit kernel, at the 64 x 256 cost of about 4% on its prompts' part.
constexpr bool prefill_units_are_long(int64_t num_tokens, int64_t num_seqs, int64_t mean_context) {
  constexpr int64_t kLong = 1024;
  return num_tokens >= kLong * (num_seqs > 0 ? num_seqs : 1) || mean_context >= kLong;
}

}  // namespace pagedattn::cuda
