#include "kv/copy_2d.h"

#include <cstring>

#include "core/check.h"
#ifdef PAGEDATTN_WITH_CUDA
#include "core/cuda_check.h"
#endif

namespace pagedattn::kv {

void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes, size_t rows,
             bool both_on_cpu, void* stream) {
  if (row_bytes == 0 || rows == 0) return;
  if (both_on_cpu) {
    for (size_t r = 0; r < rows; ++r) {
      std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, row_bytes);
    }
    return;
  }
#ifdef PAGEDATTN_WITH_CUDA
  PA_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyDefault,
                                  static_cast<cudaStream_t>(stream)));
#else
  PA_CHECK_ARG(false, "KV cache copy: a CUDA tensor in a build without CUDA");
#endif
}

}  // namespace pagedattn::kv
