// The CUDA backend of paged_attention and write_kv: host checks that validation cannot make (alignment,
// supported head dims, plan/shape agreement), the launch parameters, and the launches. A varlen call
// (query_start) runs the prefill kernel on its multi-row sequences (prefill.h) and the decode kernel on
// its one-row sequences. No device memory is read here: the kernels guard the metadata themselves
// (device_error.h).
#include <algorithm>
#include <limits>
#include <vector>

#include "attention/backends.h"
#include "attention/cuda/attention_plan_impl.h"
#include "attention/cuda/device_error_storage.h"
#include "attention/cuda/forced_choice.h"
#include "attention/cuda/kernel_launch.h"
#include "attention/cuda/prefill.h"
#include "attention/cuda/scoped_device.h"
#include "attention/cuda/split_planner.h"
#include "core/check.h"
#include "core/cuda_check.h"

namespace pagedattn::cuda {
namespace {

// Calls f(tag) with the dtype's storage tag: float, pagedattn::f16 or pagedattn::bf16.
template <class F>
void dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f16: f(pagedattn::f16{}); return;
    case DType::bf16: f(pagedattn::bf16{}); return;
    default: break;
  }
  PA_CHECK_TYPE(false, "the CUDA backend has no kernels for {}", dtype_name(dtype));
}

// 16-byte copies need 16-byte aligned data and rows.
bool rows_aligned(const TensorView& t) {
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0) return false;
  for (int d = 0; d + 1 < t.ndim; ++d)
    if (t.shape[d] > 1 && (t.strides[d] * static_cast<int64_t>(dtype_size(t.dtype))) % 16 != 0) return false;
  return true;
}

void check_aligned(const char* op, const char* name, const TensorView& t) {
  PA_CHECK_ARG(rows_aligned(t),
               "{}: {} must start on a 16-byte boundary with rows a multiple of 16 bytes apart for the CUDA "
               "backend, got address {} and strides [{}]",
               op, name, t.data, fmt::join(std::span(t.strides.data(), static_cast<size_t>(t.ndim)), ", "));
}

int device_attribute(cudaDeviceAttr attribute, int device) {
  int value = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));
  return value;
}

int32_t to_i32(int64_t v) { return static_cast<int32_t>(std::min<int64_t>(v, std::numeric_limits<int32_t>::max())); }

// The decode kernel's build (DecodeLauncher): one CTA per SM with the deeper pipeline when the grid fits on
// the SMs, else two per SM. The environment variable PAGEDATTN_DECODE_CTAS_PER_SM (1 or 2) forces a build
// for benchmarks and tests; another value is reported on stderr once and ignored.
int decode_ctas_per_sm(int64_t grid_ctas, int64_t sms) {
  static const int forced = forced_choice("PAGEDATTN_DECODE_CTAS_PER_SM", 1, 2);
  if (forced > 0) return forced;
  return grid_ctas <= sms ? 1 : 2;
}

// Items ahead whose metadata a decode CTA prefetches: about one wave of CTAs (`resident` at a time), none
// when the grid is one wave. PAGEDATTN_DECODE_PREFETCH=0 turns it off for benchmarks.
int32_t decode_prefetch_ahead(int64_t grid_ctas, int64_t resident, int64_t ctas_per_item) {
  static const int forced = forced_choice("PAGEDATTN_DECODE_PREFETCH", 0, 1);
  if (forced == 0 || grid_ctas <= resident) return 0;
  return to_i32((resident + ctas_per_item - 1) / ctas_per_item);
}

}  // namespace

void paged_attention(const PagedAttentionArgs& a, const AttentionShape& s) {
  const char* op = "paged_attention";
  const DecodeLauncher launcher = [&] {
    DecodeLauncher found;
    dispatch_dtype(a.query.dtype, [&](auto tag) { found = decode_launcher<decltype(tag)>(s.head_dim); });
    return found;
  }();
  PA_CHECK_ARG(static_cast<bool>(launcher), "{}: head_dim {} has no CUDA decode kernel: expected one of 64, 80, 96, 128, 256",
               op, s.head_dim);
  check_aligned(op, "query", a.query);
  check_aligned(op, "out", a.out);
  check_aligned(op, "key_cache", a.key_cache);
  check_aligned(op, "value_cache", a.value_cache);

  const int device = a.query.device.index;
  ScopedDevice guard(device);
  const auto stream = static_cast<cudaStream_t>(a.stream);
  const int64_t ctas_per_item = decode_ctas_per_item(s.num_kv_heads, s.group_size());
  const int64_t sms = device_attribute(cudaDevAttrMultiProcessorCount, device);

  DecodeParams p{};
  static_cast<PagedParams&>(p) = paged_params(a, s, device);
  p.head_chunks = to_i32(decode_head_chunks(s.group_size()));

  MergeParams m{};
  m.out = a.out.data;
  m.o_stride_token = p.o_stride_token;
  m.o_stride_head = p.o_stride_head;
  m.num_seqs = to_i32(s.num_seqs);
  m.num_q_heads = p.num_q_heads;
  m.head_dim = to_i32(s.head_dim);
  m.query_start = p.query_start;
  m.num_tokens = p.num_tokens;

  int64_t num_items = 0;
  bool split = false;
  void* scratch = nullptr;
  if (a.plan != nullptr) {
    const AttentionPlan::Impl& plan = a.plan->impl();
    PA_CHECK_ARG(plan.device == a.query.device, "{}: the plan is for {} but the tensors are on {}", op,
                 to_string(plan.device), to_string(a.query.device));
    PA_CHECK_ARG(plan.num_seqs == s.num_seqs && plan.block_size == s.block_size,
                 "{}: the plan was last updated for {} sequences with block_size {}, the call has {} with {}", op,
                 plan.num_seqs, plan.block_size, s.num_seqs, s.block_size);
    PA_CHECK_ARG(plan.limits.num_q_heads == s.num_q_heads && plan.limits.num_kv_heads == s.num_kv_heads &&
                     plan.limits.head_dim == s.head_dim,
                 "{}: the plan is for Hq={} Hkv={} D={}, the call has Hq={} Hkv={} D={}", op, plan.limits.num_q_heads,
                 plan.limits.num_kv_heads, plan.limits.head_dim, s.num_q_heads, s.num_kv_heads, s.head_dim);
    p.planned_lens = plan.planned_lens;
    p.partial_out = plan.partial_out;
    p.partial_lse = plan.partial_lse;
    m.partial_out = plan.partial_out;
    m.partial_lse = plan.partial_lse;
    if (plan.uniform_splits > 0) {  // items follow from their index: one dependent load less per CTA
      p.uniform_splits = m.uniform_splits = plan.uniform_splits;
      p.chunk_pages = plan.chunk_pages;
    } else {
      p.items = plan.items;
      m.partial_begin = plan.partial_begin;
      m.partial_count = plan.partial_count;
    }
    num_items = plan.num_items;
    split = plan.num_split_seqs > 0;
  } else {
    // No host lengths: plan as if every sequence filled its table row; items past a shorter sequence's
    // end find no tokens and report an empty partial.
    const std::vector<int64_t> pages(static_cast<size_t>(s.num_seqs), s.max_blocks_per_seq);
    const SplitTargets targets = split_targets(sms);
    const int32_t chunk = choose_chunk_pages(pages, {.block_size = s.block_size,
                                                     .ctas_per_item = ctas_per_item,
                                                     .target_ctas = targets.target_ctas,
                                                     .unsplit_ctas = targets.unsplit_ctas});
    const int64_t splits = std::max<int64_t>(1, (s.max_blocks_per_seq + chunk - 1) / chunk);
    p.uniform_splits = m.uniform_splits = to_i32(splits);
    p.chunk_pages = chunk;
    num_items = s.num_seqs * splits;
    split = splits > 1;
    if (split) {
      const size_t out_bytes = static_cast<size_t>(num_items * s.num_q_heads * s.head_dim) * sizeof(float);
      PA_CUDA_CHECK(cudaMallocAsync(&scratch, out_bytes + static_cast<size_t>(num_items * s.num_q_heads) * sizeof(float), stream));
      p.partial_out = static_cast<float*>(scratch);
      p.partial_lse = reinterpret_cast<float*>(static_cast<char*>(scratch) + out_bytes);
      m.partial_out = p.partial_out;
      m.partial_lse = p.partial_lse;
    }
  }
  PA_CHECK_ARG(num_items * ctas_per_item <= std::numeric_limits<int32_t>::max(),
               "{}: {} work items x {} CTAs exceed the grid limit", op, num_items, ctas_per_item);

  // Programmatic dependent launch (sm_90+) for the merge: its CTAs wait on the SMs for the decode grid.
  // The decode kernel is launched plainly: letting its CTAs occupy SMs early measured no better (within
  // 1%) and perturbs where the CTAs of a less-than-one-wave grid land.
  const bool pdl = device_attribute(cudaDevAttrComputeCapabilityMajor, device) >= 9;
  dispatch_dtype(a.query.dtype, [&](auto tag) {
    using Tag = decltype(tag);
    if (s.varlen) launch_varlen_prefill(prefill_launcher<Tag>(s.head_dim, s.scale), a, s, stream);
    const int64_t grid_ctas = num_items * ctas_per_item;
    const int ctas_per_sm = decode_ctas_per_sm(grid_ctas, sms);
    p.prefetch_ahead = decode_prefetch_ahead(grid_ctas, sms * ctas_per_sm, ctas_per_item);
    launcher.launch(p, static_cast<int>(grid_ctas), ctas_per_sm, stream, /*pdl=*/false);
    if (split) launch_merge<Tag>(m, stream, pdl);
  });
  if (scratch != nullptr) PA_CUDA_CHECK(cudaFreeAsync(scratch, stream));
  finish_launch(stream);
}

void write_kv(const WriteKvArgs& a, const WriteKvShape& s) {
  const int device = a.key.device.index;
  ScopedDevice guard(device);
  WriteKvParams p{};
  p.key = a.key.data;
  p.value = a.value.data;
  p.k_stride_token = a.key.stride(0);
  p.k_stride_head = a.key.stride(1);
  p.v_stride_token = a.value.stride(0);
  p.v_stride_head = a.value.stride(1);
  p.key_cache = a.key_cache.data;
  p.value_cache = a.value_cache.data;
  p.slot_mapping = a.slot_mapping.data_as<const int32_t>();
  p.num_tokens = to_i32(s.num_tokens);
  p.num_kv_heads = to_i32(s.num_kv_heads);
  p.head_dim = to_i32(s.head_dim);
  p.num_slots = s.num_blocks * s.block_size;
  p.error = device_error_record(device);
  const bool vector = (s.head_dim * static_cast<int64_t>(dtype_size(a.key.dtype))) % 16 == 0 && rows_aligned(a.key) &&
                      rows_aligned(a.value) && rows_aligned(a.key_cache) && rows_aligned(a.value_cache);
  const auto stream = static_cast<cudaStream_t>(a.stream);
  dispatch_dtype(a.key.dtype, [&](auto tag) { launch_write_kv<decltype(tag)>(p, vector, stream); });
  finish_launch(stream);
}

}  // namespace pagedattn::cuda
