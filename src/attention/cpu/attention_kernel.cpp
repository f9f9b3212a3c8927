// Compiles attention_kernel-inl.h once per Highway target and dispatches to the best one at run time.
#include <cstdlib>
#include <memory>
#include <new>

#include "core/simd_targets.h"  // before any Highway header

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "attention/cpu/attention_kernel.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attention/cpu/attention_kernel-inl.h"

#if HWY_ONCE
namespace pagedattn::cpu {

HWY_EXPORT(RunItem);
HWY_EXPORT(MergeSplitGroup);

void run_work_item(const KernelParams& params, const WorkItem& item, float* partials) {
  HWY_DYNAMIC_DISPATCH(RunItem)(params, item, partials);
}

void merge_split_group(const KernelParams& params, const SplitGroup& group, const float* partials) {
  HWY_DYNAMIC_DISPATCH(MergeSplitGroup)(params, group, partials);
}

namespace detail {

void* thread_scratch(size_t bytes) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<void, Free> buffer;
  thread_local size_t capacity = 0;
  if (bytes > capacity) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* fresh = std::aligned_alloc(64, rounded);
    if (fresh == nullptr) throw std::bad_alloc();
    buffer.reset(fresh);
    capacity = rounded;
  }
  return buffer.get();
}

}  // namespace detail
}  // namespace pagedattn::cpu
#endif  // HWY_ONCE
