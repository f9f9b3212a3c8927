#include "common/paged_problem.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace pagedattn::testing {

int64_t ProblemSpec::num_tokens() const {
  return varlen() ? std::accumulate(q_lens.begin(), q_lens.end(), int64_t{0}) : num_seqs();
}

std::string ProblemSpec::name() const {
  auto summarize = [](const std::vector<int32_t>& v) {
    if (v.size() <= 6) return fmt::format("[{}]", fmt::join(v, ","));
    return fmt::format("[{},{},..x{}]", v[0], v[1], v.size());
  };
  return fmt::format("B={} ctx={} q={} Hq={} Hkv={} D={} bs={} {}{}{}", num_seqs(), summarize(context_lens),
                     varlen() ? summarize(q_lens) : std::string("decode"), num_q_heads, num_kv_heads, head_dim,
                     block_size, dtype_name(dtype), share_prefix ? " shared" : "", causal ? "" : " noncausal");
}

void fill_uniform(const TensorView& t, std::mt19937_64& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32:
      for (int64_t i = 0; i < n; ++i) t.data_as<float>()[i] = dist(rng);
      break;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) t.data_as<f16>()[i] = from_f32<f16>(dist(rng));
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) t.data_as<bf16>()[i] = from_f32<bf16>(dist(rng));
      break;
    case DType::f64:
      for (int64_t i = 0; i < n; ++i) t.data_as<double>()[i] = dist(rng);
      break;
    default: throw std::invalid_argument("fill_uniform: not a float tensor");
  }
}

namespace {

void set_element(const TensorView& t, int64_t i, double v) {
  switch (t.dtype) {
    case DType::f32: t.data_as<float>()[i] = static_cast<float>(v); break;
    case DType::f16: t.data_as<f16>()[i] = from_f32<f16>(static_cast<float>(v)); break;
    case DType::bf16: t.data_as<bf16>()[i] = from_f32<bf16>(static_cast<float>(v)); break;
    case DType::f64: t.data_as<double>()[i] = v; break;
    default: throw std::invalid_argument("set_element: not a float tensor");
  }
}

double get_element(const TensorView& t, int64_t offset) {
  switch (t.dtype) {
    case DType::f32: return t.data_as<const float>()[offset];
    case DType::f16: return to_f32(t.data_as<const f16>()[offset]);
    case DType::bf16: return to_f32(t.data_as<const bf16>()[offset]);
    case DType::f64: return t.data_as<const double>()[offset];
    default: throw std::invalid_argument("get_element: not a float tensor");
  }
}

}  // namespace

void fill_constant(const TensorView& t, double value) {
  for (int64_t i = 0; i < t.numel(); ++i) set_element(t, i, value);
}

Problem make_problem(const ProblemSpec& spec) {
  if (spec.varlen() && spec.q_lens.size() != spec.context_lens.size())
    throw std::invalid_argument("ProblemSpec: q_lens and context_lens differ in length");
  std::mt19937_64 rng(spec.seed);
  const int64_t B = spec.num_seqs(), bs = spec.block_size;
  std::vector<int64_t> live(B);
  int64_t max_live = 0;
  for (int64_t b = 0; b < B; ++b) {
    live[b] = (spec.context_lens[b] + bs - 1) / bs;
    max_live = std::max(max_live, live[b]);
  }
  // Leading full blocks shared by every sequence, as after fork() or a prefix-cache hit.
  int64_t shared = 0;
  if (spec.share_prefix && B > 1) {
    shared = std::numeric_limits<int64_t>::max();
    for (int64_t b = 0; b < B; ++b) shared = std::min<int64_t>(shared, spec.context_lens[b] / bs);
  }
  int64_t needed = shared;
  for (int64_t b = 0; b < B; ++b) needed += live[b] - shared;
  const int64_t num_blocks = needed + spec.spare_blocks;
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);

  Problem p;
  p.spec = spec;
  const int64_t T = spec.num_tokens(), cols = max_live + spec.extra_table_columns;
  p.block_tables = Tensor::empty({B, cols}, DType::i32);
  p.context_lens = Tensor::empty({B}, DType::i32);
  auto* table = p.block_tables.data_as<int32_t>();
  std::uniform_int_distribution<int32_t> garbage(0, 3);
  size_t next = static_cast<size_t>(shared);
  for (int64_t b = 0; b < B; ++b) {
    p.context_lens.data_as<int32_t>()[b] = spec.context_lens[b];
    for (int64_t i = 0; i < cols; ++i) {
      int32_t id;
      if (i < shared) id = ids[static_cast<size_t>(i)];
      else if (i < live[b]) id = ids[next++];
      else id = garbage(rng) == 0 ? -1 : static_cast<int32_t>(num_blocks + 1000 * (1 + garbage(rng)));  // ignored
      table[b * cols + i] = id;
    }
  }
  if (spec.varlen()) {
    p.query_start = Tensor::empty({B + 1}, DType::i32);
    auto* qs = p.query_start.data_as<int32_t>();
    qs[0] = 0;
    for (int64_t b = 0; b < B; ++b) qs[b + 1] = qs[b] + spec.q_lens[b];
  }

  const int64_t Hq = spec.num_q_heads, Hkv = spec.num_kv_heads, D = spec.head_dim;
  p.query = Tensor::empty({T, Hq, D}, spec.dtype);
  p.key_cache = Tensor::empty({num_blocks, bs, Hkv, D}, spec.dtype);
  p.value_cache = Tensor::empty({num_blocks, bs, Hkv, D}, spec.dtype);
  p.out = Tensor::empty({T, Hq, D}, spec.dtype);
  fill_uniform(p.query, rng, -1.0f, 1.0f);
  fill_uniform(p.key_cache, rng, -1.0f, 1.0f);
  fill_uniform(p.value_cache, rng, -1.0f, 1.0f);
  fill_constant(p.out, std::numeric_limits<double>::quiet_NaN());

  if (spec.poison_unused) {
    std::vector<bool> used(static_cast<size_t>(num_blocks * bs), false);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t pos = 0; pos < spec.context_lens[b]; ++pos)
        used[static_cast<size_t>(table[b * cols + pos / bs] * bs + pos % bs)] = true;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t slot = 0; slot < num_blocks * bs; ++slot) {
      if (used[static_cast<size_t>(slot)]) continue;
      for (int64_t e = 0; e < Hkv * D; ++e) {
        set_element(p.key_cache, slot * Hkv * D + e, nan);
        set_element(p.value_cache, slot * Hkv * D + e, nan);
      }
    }
  }
  return p;
}

PagedAttentionArgs Problem::args() const {
  PagedAttentionArgs a;
  a.out = out;
  a.query = query;
  a.key_cache = key_cache;
  a.value_cache = value_cache;
  a.block_tables = block_tables;
  a.context_lens = context_lens;
  if (spec.varlen()) a.query_start = query_start.view();
  a.causal = spec.causal;
  return a;
}

Problem Problem::to(Device device) const {
  Problem p;
  p.spec = spec;
  p.query = query.to(device);
  p.key_cache = key_cache.to(device);
  p.value_cache = value_cache.to(device);
  p.block_tables = block_tables.to(device);
  p.context_lens = context_lens.to(device);
  if (spec.varlen()) p.query_start = query_start.to(device);
  p.out = out.to(device);
  return p;
}

// Tolerances against the fp64 reference, for inputs already rounded to the dtype (so the error is the
// backend's arithmetic plus the final rounding): f32 accumulates in f32; f16/bf16 outputs are rounded
// to 11/8 mantissa bits and tensor-core paths round P to the dtype as well.
Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::f32: return {2e-5, 1e-4};
    case DType::f16: return {2e-3, 5e-3};
    case DType::bf16: return {1e-2, 2e-2};
    default: return {1e-9, 1e-9};
  }
}

::testing::AssertionResult matches_reference(const TensorView& out, const std::vector<double>& ref, Tolerance tol) {
  const int64_t T = out.size(0), H = out.size(1), D = out.size(2);
  if (static_cast<int64_t>(ref.size()) != T * H * D)
    return ::testing::AssertionFailure() << "reference has " << ref.size() << " elements, out " << T * H * D;
  int64_t bad = 0;
  double worst = -1;
  int64_t wt = 0, wh = 0, wd = 0;
  double wv = 0, wr = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) {
        const double v = get_element(out, t * out.strides[0] + h * out.strides[1] + d * out.strides[2]);
        const double r = ref[static_cast<size_t>((t * H + h) * D + d)];
        const double err = std::abs(v - r);
        const double excess = std::isnan(v) ? std::numeric_limits<double>::infinity()
                                            : err - (tol.atol + tol.rtol * std::abs(r));
        if (excess > 0) ++bad;
        if (excess > worst || worst < 0) {
          worst = excess;
          wt = t, wh = h, wd = d, wv = v, wr = r;
        }
      }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << T * H * D << " elements outside atol " << tol.atol
                                       << " + rtol " << tol.rtol << "; worst at (row " << wt << ", head " << wh
                                       << ", dim " << wd << "): got " << wv << ", reference " << wr;
}

std::vector<ProblemSpec> edge_case_specs(DType dtype) {
  std::vector<ProblemSpec> specs;
  auto add = [&](ProblemSpec s) {
    s.dtype = dtype;
    s.seed = 1000 + specs.size();
    specs.push_back(std::move(s));
  };
  // Lengths around block boundaries, decode.
  for (int32_t ctx : {1, 15, 16, 17, 32, 100}) add({.context_lens = {ctx}});
  // Block sizes 1..256 with a length that ends mid-block.
  for (int64_t bs : {1, 8, 16, 32, 64, 128, 256}) {
    const int32_t ctx = static_cast<int32_t>(bs * 3 + bs / 2 + 1);
    add({.context_lens = {ctx, 1, static_cast<int32_t>(bs)}, .block_size = bs});
  }
  // GQA groups 1, 2, 3, 4, 8, 16 (SmolLM2: 9 q heads over 3 kv heads).
  for (int64_t group : {1, 2, 3, 4, 8, 16})
    add({.context_lens = {37, 64, 5}, .num_q_heads = 2 * group, .num_kv_heads = 2});
  add({.context_lens = {70, 9}, .num_q_heads = 9, .num_kv_heads = 3});
  // Head dims.
  for (int64_t D : {64, 80, 96, 128, 256}) add({.context_lens = {33, 80}, .head_dim = D});
  // Wide tables, shared prefix blocks, ragged lengths (one sequence 1000x the other).
  add({.context_lens = {20, 47, 3}, .extra_table_columns = 5});
  add({.context_lens = {64, 70, 100}, .share_prefix = true});
  add({.context_lens = {5, 5000}, .num_q_heads = 4, .num_kv_heads = 1, .head_dim = 64});
  // A long context (32k) in one sequence.
  add({.context_lens = {32768}, .num_q_heads = 8, .num_kv_heads = 2, .head_dim = 64});
  // Varlen: whole-prompt prefill, chunks on top of a cache (boundaries inside and at blocks), mixed batch.
  add({.context_lens = {1}, .q_lens = {1}});
  add({.context_lens = {40}, .q_lens = {40}});
  add({.context_lens = {48, 33}, .q_lens = {16, 7}});
  add({.context_lens = {17, 64, 200, 1, 31}, .q_lens = {1, 64, 13, 1, 0}});
  add({.context_lens = {300, 90}, .q_lens = {300, 1}, .num_q_heads = 9, .num_kv_heads = 3, .block_size = 32});
  add({.context_lens = {64, 70, 100}, .q_lens = {1, 6, 36}, .share_prefix = true});
  // Non-causal: every row sees the whole context.
  add({.context_lens = {50, 20}, .q_lens = {10, 20}, .causal = false});
  return specs;
}

ProblemSpec random_spec(std::mt19937_64& rng, DType dtype, bool varlen) {
  auto pick = [&](std::initializer_list<int64_t> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
  };
  ProblemSpec s;
  s.dtype = dtype;
  s.seed = rng();
  s.num_kv_heads = pick({1, 2, 3});
  s.num_q_heads = s.num_kv_heads * pick({1, 2, 3, 4, 8});
  s.head_dim = pick({64, 80, 96, 128});
  s.block_size = pick({1, 4, 16, 32});
  s.extra_table_columns = pick({0, 0, 3});
  s.share_prefix = pick({0, 0, 1}) == 1;
  const int64_t B = pick({1, 2, 3, 5, 8});
  std::uniform_int_distribution<int32_t> len(1, 300);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t ctx = len(rng);
    s.context_lens.push_back(ctx);
    if (varlen) s.q_lens.push_back(pick({0, 1}) ? 1 : std::uniform_int_distribution<int32_t>(0, ctx)(rng));
  }
  return s;
}

}  // namespace pagedattn::testing
