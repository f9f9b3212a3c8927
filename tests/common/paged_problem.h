// The conformance harness shared by every backend's tests and the benchmarks (ggml test-backend-ops
// style): a spec of a paged-attention problem, a random instance of it, the edge-case list of
// DESIGN.md §3, and per-dtype tolerances against the fp64 reference.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pagedattn/attention.h"
#include "pagedattn/tensor.h"

namespace pagedattn::testing {

struct ProblemSpec {
  std::vector<int32_t> context_lens;  // tokens in the cache per sequence, new ones included
  std::vector<int32_t> q_lens;        // query rows per sequence; empty = decode call without query_start
  int64_t num_q_heads = 8;
  int64_t num_kv_heads = 2;
  int64_t head_dim = 64;
  int64_t block_size = 16;
  DType dtype = DType::f32;
  int64_t extra_table_columns = 0;  // block_tables columns past the longest sequence (hold garbage ids)
  int64_t spare_blocks = 3;         // pool blocks that no sequence uses
  bool share_prefix = false;        // sequences share their leading full blocks (as after fork / prefix hit)
  bool causal = true;
  // Fill every cache slot that no live position covers (spare blocks, tails of last blocks) with NaN:
  // a backend that reads or multiplies them shows NaN in its output.
  bool poison_unused = true;
  uint64_t seed = 1;

  int64_t num_seqs() const { return static_cast<int64_t>(context_lens.size()); }
  bool varlen() const { return !q_lens.empty(); }
  int64_t num_tokens() const;
  std::string name() const;  // e.g. "B=2 ctx=[17,33] q=[1,5] Hq=8 Hkv=2 D=64 bs=16 float32"
};

// One random instance of a spec, on the CPU. Block ids are a random permutation of the pool; table
// entries past the live blocks hold -1 or out-of-range ids; `out` is pre-filled with NaN.
struct Problem {
  ProblemSpec spec;
  Tensor query, key_cache, value_cache, block_tables, context_lens, query_start, out;

  PagedAttentionArgs args() const;
  Problem to(Device device) const;  // every tensor copied to `device`
};

Problem make_problem(const ProblemSpec& spec);

// Element-wise |out - ref| <= atol + rtol * |ref|; stated per dtype in paged_problem.cpp.
struct Tolerance {
  double atol;
  double rtol;
};
Tolerance tolerance_for(DType dtype);

// Checks a CPU tensor [T, Hq, D] (any float dtype, any strides) against the fp64 reference output;
// on failure reports the number of bad elements and the worst one with its (row, head, dim).
::testing::AssertionResult matches_reference(const TensorView& out, const std::vector<double>& ref, Tolerance tol);

// DESIGN.md §3: context 1, one block, block_size +- 1, 32k, shuffled and shared ids, wide tables, GQA
// groups 1/2/3/4/8/16, head dims 64/80/96/128/256, block sizes 1..256, q_len 1..whole prompt, mixed
// batches, ragged lengths, non-causal. All in `dtype`.
std::vector<ProblemSpec> edge_case_specs(DType dtype);

// A random small spec (decode or varlen with mixed q_lens), for randomized sweeps.
ProblemSpec random_spec(std::mt19937_64& rng, DType dtype, bool varlen);

// Uniform values in [lo, hi), rounded to the tensor's dtype. CPU, contiguous.
void fill_uniform(const TensorView& t, std::mt19937_64& rng, float lo, float hi);
// Every element set to `value` (f32/f16/bf16/f64). CPU, contiguous.
void fill_constant(const TensorView& t, double value);

}  // namespace pagedattn::testing
