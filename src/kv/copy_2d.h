// Strided byte copies between host and device memory for the KV cache (private to src/kv): copy-on-write
// block copies across all layers, and the per-step metadata upload.
#pragma once

#include <cstddef>

namespace pagedattn::kv {

// Copies `rows` rows of `row_bytes` bytes; row r starts at dst + r * dst_pitch and src + r * src_pitch.
// Both on the CPU: memcpy. Otherwise one cudaMemcpy2DAsync on `stream` (a cudaStream_t, nullptr = default),
// its direction taken from the pointers.
void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes, size_t rows,
             bool both_on_cpu, void* stream);

}  // namespace pagedattn::kv
