// The CPU attention kernel for f32 storage: attention_kernel-inl.h compiled once more per Highway target, in its
// own namespace, because on AVX-512 targets its f32 tiles are 8 positions wide (see DF there).
#include "core/simd_targets.h"  // before any Highway header

#define PAGEDATTN_CPU_KERNEL_F32 1
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "attention/cpu/attention_kernel_f32.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attention/cpu/attention_kernel-inl.h"

#if HWY_ONCE
namespace pagedattn::cpu {
namespace storage32 {

HWY_EXPORT(RunItem);

}  // namespace storage32

void detail::run_work_item_f32(const KernelParams& params, const WorkItem& item, float* partials) {
  using namespace storage32;  // an unqualified name for HWY_DYNAMIC_DISPATCH, as in attention_kernel.cpp
  HWY_DYNAMIC_DISPATCH(RunItem)(params, item, partials);
}

}  // namespace pagedattn::cpu
#endif  // HWY_ONCE
