#include "attention/cuda/split_planner.h"

#include <algorithm>
#include <numeric>

#include "core/int_math.h"

namespace pagedattn::cuda {
namespace {

int64_t count_items(std::span<const int64_t> pages, int64_t chunk) {
  int64_t n = 0;
  for (int64_t p : pages) n += std::max<int64_t>(1, ceil_div(p, chunk));
  return n;
}

}  // namespace

int32_t choose_chunk_pages(std::span<const int64_t> pages, const SplitRequest& r) {
  const int64_t longest = std::max<int64_t>(1, pages.empty() ? 1 : *std::max_element(pages.begin(), pages.end()));
  const int64_t upper = std::min<int64_t>(longest, r.max_item_pages);
  if (count_items(pages, upper) * r.ctas_per_item >= std::min(r.target_ctas, r.unsplit_ctas))
    return static_cast<int32_t>(upper);
  // CTAs fall as the chunk grows: binary-search the smallest chunk that stays within the target.
  int64_t lo = 1, hi = upper;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (count_items(pages, mid) * r.ctas_per_item <= r.target_ctas) hi = mid;
    else lo = mid + 1;
  }
  const int64_t floor_pages = std::max<int64_t>(1, ceil_div(r.min_item_tokens, r.block_size));
  return static_cast<int32_t>(std::min(upper, std::max(lo, floor_pages)));
}

SplitPlan plan_splits(const SplitRequest& r) {
  const size_t num_seqs = r.context_lens.size();
  std::vector<int64_t> pages(num_seqs);
  for (size_t b = 0; b < num_seqs; ++b) pages[b] = ceil_div(std::max<int32_t>(r.context_lens[b], 0), r.block_size);

  SplitPlan plan;
  plan.chunk_pages = choose_chunk_pages(pages, r);
  plan.partial_begin.assign(num_seqs, 0);
  plan.partial_count.assign(num_seqs, 1);
  for (size_t b = 0; b < num_seqs; ++b) {
    const int64_t n = std::max<int64_t>(1, ceil_div(pages[b], plan.chunk_pages));
    plan.partial_count[b] = static_cast<int32_t>(n);
    if (n > 1) {
      plan.partial_begin[b] = plan.num_partials;
      plan.num_partials += static_cast<int32_t>(n);
    }
    for (int64_t s = 0; s < n; ++s) {
      const int64_t first = s * plan.chunk_pages;
      plan.items.push_back({static_cast<int32_t>(b), static_cast<int32_t>(first),
                            static_cast<int32_t>(std::min<int64_t>(plan.chunk_pages, pages[b] - first)),
                            n > 1 ? static_cast<int32_t>(plan.partial_begin[b] + s) : -1});
    }
  }
  // Longest items first (stable, so equal items keep sequence order): the CTAs that start last are short.
  std::stable_sort(plan.items.begin(), plan.items.end(),
                   [](const DecodeWorkItem& a, const DecodeWorkItem& b) { return a.num_pages > b.num_pages; });
  return plan;
}

}  // namespace pagedattn::cuda
