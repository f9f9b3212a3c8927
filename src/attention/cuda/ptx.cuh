// Thin wrappers over the PTX the CUDA kernels use: cp.async (16-byte global->shared copies that can
// zero-fill instead of reading), ldmatrix, mma.sync m16n8k16 and programmatic dependent launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace pagedattn::cuda::ptx {

__device__ inline uint32_t smem_address(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// Copies 16 bytes (bypassing L1, with a 128-byte L2 prefetch; 256 bytes measured no better), or writes 16
// zero bytes without reading `src` when !read. The choice is cp.async's ignore-src predicate: no source size
// to compute per copy.
__device__ inline void cp_async_16(uint32_t dst_address, const void* src, bool read) {
  asm volatile(
      "{\n .reg .pred skip;\n setp.eq.u32 skip, %2, 0;\n"
      " cp.async.cg.shared.global.L2::128B [%0], [%1], 16, skip;\n}\n" ::"r"(dst_address),
      "l"(src), "r"(static_cast<uint32_t>(read))
      : "memory");
}
__device__ inline void cp_async_16(void* dst, const void* src, bool read) { cp_async_16(smem_address(dst), src, read); }
// A cache row that is not read (a key past the sequence, or of a bad block id): slot -1 as unsigned.
constexpr uint32_t kNoCacheSlot = 0xffffffffu;
// Copies 16 bytes of cache row `slot` (K or V: a token's slot of num_kv_heads x head_dim elements) from
// `column`, the address of those bytes in row 0; zero-fills for kNoCacheSlot. Slots below 2^31 and rows below
// 2^32 bytes (the shared validation checks both) make the address one widening multiply-add (IMAD.WIDE.U32)
// instead of a signed 64-bit product and a pointer scale.
__device__ inline void cp_async_row_16(uint32_t dst_address, uint64_t column, uint32_t slot, uint32_t row_bytes) {
  const bool read = slot != kNoCacheSlot;
  const uint64_t row = column + static_cast<uint64_t>(read ? slot : 0u) * row_bytes;
  cp_async_16(dst_address, reinterpret_cast<const void*>(row), read);
}
// Copies 4 bytes (through L1: small metadata such as block-table entries).
__device__ inline void cp_async_4(uint32_t dst_address, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst_address), "l"(src) : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ inline void st_shared_b32(uint32_t address, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(address), "r"(v) : "memory");
}
__device__ inline uint4 ld_shared_v4(uint32_t address) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(address) : "memory");
  return v;
}

// By shared-memory address (32 bits: a base plus compile-time offsets costs no registers per fragment).
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_x4(r, smem_address(p)); }
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_x4_trans(r, smem_address(p)); }

// c += a * b for one 16x8x16 tile, f32 accumulators.
template <class T>
__device__ inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ inline void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ inline void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded into one 32-bit register of 16-bit values, the first in the low half.
template <class T>
__device__ inline uint32_t pack2(float lo, float hi);
template <>
__device__ inline uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ inline uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ inline float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Programmatic dependent launch (sm_90): the next kernel in the stream may start early and waits here
// for this one's results.
__device__ inline void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ inline void wait_for_prerequisites() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// A hint that brings the 128-byte line holding `address` into L2 (nothing is returned; never faults on a
// valid address).
__device__ inline void prefetch_l2(const void* address) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(address));
}

__device__ inline uint32_t fast_divide(uint32_t n, uint32_t multiplier, uint32_t shift) {
  return (__umulhi(n, multiplier) + n) >> shift;
}

}  // namespace pagedattn::cuda::ptx
