// Compiles attention_kernel-inl.h once per Highway target for 16-bit storage and the merge, and dispatches to the
// best target at run time; f32 items go to attention_kernel_f32.cpp.
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
namespace storage16 {

HWY_EXPORT(RunItem);
HWY_EXPORT(MergeSplitGroup);

}  // namespace storage16

// HWY_DYNAMIC_DISPATCH takes an unqualified name: its table's, or with one static target (HWY_COMPILE_ONLY_STATIC)
// HWY_NAMESPACE::name, which must resolve inside storage16.
void run_work_item(const KernelParams& params, const WorkItem& item, float* partials) {
  if (params.dtype == DType::f32) return detail::run_work_item_f32(params, item, partials);
  using namespace storage16;
  HWY_DYNAMIC_DISPATCH(RunItem)(params, item, partials);
}

void merge_split_group(const KernelParams& params, const SplitGroup& group, const float* partials) {
  using namespace storage16;
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
