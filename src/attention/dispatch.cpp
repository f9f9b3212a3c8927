// The public entry points: one shared validation, then the backend of the tensors' device.
#include "attention/backends.h"
#include "core/check.h"

namespace pagedattn {

void paged_attention(const PagedAttentionArgs& args) {
  const AttentionShape shape = validate_paged_attention(args);
  if (shape.num_tokens == 0) return;
  if (args.query.device.is_cpu()) {
    cpu::paged_attention(args, shape);
    return;
  }
#ifdef PAGEDATTN_WITH_CUDA
  cuda::paged_attention(args, shape);
#else
  PA_CHECK_ARG(false, "paged_attention: tensors are on {} but pagedattn was built without CUDA",
               to_string(args.query.device));
#endif
}

void write_kv(const WriteKvArgs& args) {
  const WriteKvShape shape = validate_write_kv(args);
  if (shape.num_tokens == 0) return;
  if (args.key.device.is_cpu()) {
    cpu::write_kv(args, shape);
    return;
  }
#ifdef PAGEDATTN_WITH_CUDA
  cuda::write_kv(args, shape);
#else
  PA_CHECK_ARG(false, "write_kv: tensors are on {} but pagedattn was built without CUDA", to_string(args.key.device));
#endif
}

}  // namespace pagedattn
