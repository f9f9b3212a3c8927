#include "attention/cpu/attention_plan.h"

#include <algorithm>

#include "core/int_math.h"

namespace pagedattn::cpu {
namespace {

// [begin, end) of part i when n things are cut into `parts` nearly equal parts.
int32_t part_begin(int64_t n, int64_t parts, int64_t i) { return static_cast<int32_t>(n * i / parts); }

}  // namespace

WorkPlan make_plan(const AttentionShape& s, const int32_t* context_lens, const int32_t* query_start, bool causal,
                        const PlanOptions& o) {
  const int64_t group = s.group_size(), num_kv_heads = s.num_kv_heads;

  // First the unsplit items: each covers its rows' whole visible range [0, visible).
  std::vector<WorkItem> whole;
  int64_t total_cost = 0;
  for (int64_t b = 0; b < s.num_seqs; ++b) {
    const int64_t row0 = query_start ? query_start[b] : b;
    const int64_t q_len = query_start ? query_start[b + 1] - row0 : 1;
    const int64_t context = context_lens[b];
    if (q_len == 0) continue;
    // Rows and heads per item so that about target_vectors query vectors share each K/V row read.
    const int64_t rows_per_tile = std::clamp<int64_t>(o.target_vectors / group, 1, q_len);
    const int64_t heads_per_item = std::clamp<int64_t>(o.target_vectors / (rows_per_tile * group), 1, num_kv_heads);
    const int64_t row_tiles = ceil_div(q_len, rows_per_tile), head_ranges = ceil_div(num_kv_heads, heads_per_item);
    for (int64_t hr = 0; hr < head_ranges; ++hr) {
      for (int64_t rt = 0; rt < row_tiles; ++rt) {
        WorkItem it;
        it.seq = static_cast<int32_t>(b);
        it.head_begin = part_begin(num_kv_heads, head_ranges, hr);
        it.head_end = part_begin(num_kv_heads, head_ranges, hr + 1);
        it.row_begin = static_cast<int32_t>(row0 + part_begin(q_len, row_tiles, rt));
        it.row_end = static_cast<int32_t>(row0 + part_begin(q_len, row_tiles, rt + 1));
        // Causal: the tile's last row sees the most, up to its own position.
        it.kv_end = static_cast<int32_t>(causal ? context - q_len + (it.row_end - row0) : context);
        it.cost = it.num_vectors(group) * it.kv_end;
        total_cost += it.cost;
        whole.push_back(it);
      }
    }
  }

  // Then split the long ones over KV so that there are about items_per_thread items per thread.
  WorkPlan plan;
  const int64_t target_items = std::max<int64_t>(1, o.items_per_thread * o.num_threads);
  const int64_t cost_per_item = std::max<int64_t>(1, ceil_div(total_cost, target_items));
  for (const WorkItem& w : whole) {
    const int64_t vectors = w.num_vectors(group);
    plan.max_vectors = std::max(plan.max_vectors, vectors);
    const int64_t visible = w.kv_end;
    const int64_t chunk_target = std::max(o.min_chunk, ceil_div(cost_per_item, vectors));
    // Chunks are multiples of 64 positions so that their tiles start on the same boundaries as unsplit ones.
    const int64_t chunk = ceil_div(ceil_div(visible, ceil_div(visible, chunk_target)), 64) * 64;
    const int64_t splits = ceil_div(visible, chunk);
    if (splits <= 1) {
      plan.items.push_back(w);
      continue;
    }
    SplitGroup g{.seq = w.seq, .head_begin = w.head_begin, .head_end = w.head_end, .row_begin = w.row_begin,
                 .row_end = w.row_end, .first_partial = plan.partial_floats, .num_splits = static_cast<int32_t>(splits),
                 .slot_floats = vectors * (s.head_dim + 2)};
    for (int64_t i = 0; i < splits; ++i) {
      WorkItem it = w;
      it.kv_begin = static_cast<int32_t>(i * chunk);
      it.kv_end = static_cast<int32_t>(std::min(visible, (i + 1) * chunk));
      it.partial = g.first_partial + i * g.slot_floats;
      it.cost = vectors * (it.kv_end - it.kv_begin);
      plan.items.push_back(it);
    }
    plan.partial_floats += splits * g.slot_floats;
    plan.splits.push_back(g);
  }
  std::stable_sort(plan.items.begin(), plan.items.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  return plan;
}

}  // namespace pagedattn::cpu
