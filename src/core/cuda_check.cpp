#include "core/cuda_check.h"

#include "core/check.h"

namespace pagedattn::detail {

void throw_cuda_error(cudaError_t status, const char* expression, const char* file, int line) {
  fail(status == cudaErrorMemoryAllocation ? ErrorKind::out_of_memory : ErrorKind::runtime,
       fmt::format("{} failed: {} ({}:{})", expression, cudaGetErrorString(status), file, line));
}

}  // namespace pagedattn::detail
