// Hopper (sm_90a) warpgroup MMA: shared-memory matrix descriptors for 128-byte-swizzled tiles, wgmma.mma_async
// m64nNk16 (f32 accumulators, f16/bf16 inputs) with A from shared memory or registers, and the fences around
// them. The instructions exist only when compiling for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere these
// wrappers compile to nothing and are never called (prefill_launch.cuh selects the wgmma kernel only on sm_90
// devices running sm_90a code).
//
// Shared layout of a 16-bit tile with 128-element rows (D = 128) as wgmma reads it with 128-byte swizzle:
// two column halves of 64 elements, each `rows` x 128 bytes, half h at h * rows * 128; within a half, row r
// at r * 128 and its 16-byte chunk c (elements 8c..8c+7) at chunk c ^ (r % 8). The swizzle is a function of
// the address bits (bits 4-6 ^= bits 7-9), so every tile base is 1024-byte aligned.
//
// Descriptor fields and canonical layouts followed: PTX ISA, "Asynchronous Warpgroup Level Matrix Shared
// Memory Layout: Matrix Descriptor" (start address >> 4 in bits 0-13, leading dimension byte offset >> 4 in
// 16-29, stride dimension byte offset >> 4 in 32-45, base offset 49-51, swizzle mode 62-63 with 1 = 128B),
// and CUTLASS's description of the canonical 128B-swizzled layouts (cute/arch/mma_sm90_desc.hpp,
// make_gmma_desc), in 16-byte units:
//   K-major:  ((8, n), 2) : ((8, SBO), 1)       8 rows 128 bytes apart, row groups SBO apart; LBO unused;
//   MN-major: ((8, n), (8, k)) : ((1, LBO), (8, SBO))   64 MN-elements contiguous, MN blocks of 64 LBO
//             apart; 8 K-rows 128 bytes apart, K groups of 8 rows SBO apart.
// tests/cuda/test_wgmma.cu checks both against a CPU product.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PAGEDATTN_WGMMA_DEVICE 1
#else
#define PAGEDATTN_WGMMA_DEVICE 0
#endif

namespace pagedattn::cuda::wgmma {

// Byte offset of (row, 16-byte chunk c of 16) in a swizzled D = 128 tile of `rows` rows.
__host__ __device__ constexpr uint32_t swizzled_offset(int rows, int row, int chunk) {
  return static_cast<uint32_t>((chunk / 8) * rows * 128 + row * 128 + (((chunk % 8) ^ (row % 8)) * 16));
}

// The kernel's dynamic shared memory from its first 1024-aligned byte on (launches ask for 1024 bytes to
// spare): swizzle atoms need 1024-aligned shared addresses.
__device__ inline unsigned char* atom_aligned_dynamic_smem() {
  extern __shared__ __align__(1024) unsigned char dynamic_smem[];
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(dynamic_smem));
  return dynamic_smem + (1024 - address % 1024) % 1024;
}

// Descriptor of a 128B-swizzled operand at shared address `address` (1024-aligned atoms; the address may
// sit 32/64/96 bytes into an atom row for a k16 step of a K-major operand).
__device__ inline uint64_t descriptor(uint32_t address, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return static_cast<uint64_t>((address >> 4) & 0x3fff) | static_cast<uint64_t>((lbo_bytes >> 4) & 0x3fff) << 16 |
         static_cast<uint64_t>((sbo_bytes >> 4) & 0x3fff) << 32 | uint64_t{1} << 62;
}

__device__ inline void fence() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ inline void commit() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int kPending>
__device__ inline void wait() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
#endif
}
// Shared-memory writes of the generic proxy (st.shared, cp.async) made visible to wgmma's async-proxy reads.
__device__ inline void fence_proxy_async() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Per-thread register limits of warp-specialized kernels, set by all warps of a warpgroup together: a copy
// warpgroup gives registers back (shrink) so that the math warpgroups can take them (grow).
template <int kRegisters>
__device__ inline void shrink_registers() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
#endif
}
template <int kRegisters>
__device__ inline void grow_registers() {
#if PAGEDATTN_WGMMA_DEVICE
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
#endif
}

// Keeps the compiler from moving accesses of accumulator registers across wgmma issue / wait.
template <int kN>
__device__ inline void pin(float (&d)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Wgmma<N, T>::ss / rs: d (64 x N, f32; per warp the mma.sync m16n8 accumulator layout for its 16 rows, per
// 8-column block) (+)= A (64 x 16) * B (16 x N, shared). kTransB 0: B K-major, 1: B N-major.
template <int kN, class T>
struct Wgmma;

#if PAGEDATTN_WGMMA_DEVICE
// The accumulator operand lists of m64n64 (32 registers) and m64n128 (64).
#define PAGEDATTN_WGMMA_D32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define PAGEDATTN_WGMMA_D64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define PAGEDATTN_WGMMA_OUT32 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define PAGEDATTN_WGMMA_OUT64 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
// One specialization: N, the C++ type, its PTX name, the accumulator count R and the operand numbers that
// follow the R accumulators (A descriptor or A registers, B descriptor, scale-d predicate, trans-b).
#define PAGEDATTN_WGMMA(kN, T, ptx_type, R, A_SS, B_SS, P_SS, TB_SS, A_RS, B_RS, P_RS, TB_RS)                      \
  template <>                                                                                                    \
  struct Wgmma<kN, T> {                                                                                          \
    /* d (64 x N, f32) (+)= A (64 x 16, shared, K-major) * B (16 x N, shared; trans_b 0 K-major, 1 N-major). */  \
    template <int kTransB>                                                                                       \
    __device__ static void ss(float (&d)[R], uint64_t a, uint64_t b, bool accumulate) {                          \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P_SS ", 0;\n"                                             \
                   "wgmma.mma_async.sync.aligned.m64n" #kN "k16.f32." ptx_type "." ptx_type " "                  \
                   PAGEDATTN_WGMMA_D##R ", " A_SS ", " B_SS ", p, 1, 1, 0, " TB_SS ";\n}\n"                      \
                   : PAGEDATTN_WGMMA_OUT##R                                                                      \
                   : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)), "n"(kTransB));                           \
    }                                                                                                            \
    /* d (+)= A (64 x 16 from registers: each warp's mma.sync m16n8k16 A fragment of its 16 rows) * B. */        \
    template <int kTransB>                                                                                       \
    __device__ static void rs(float (&d)[R], const uint32_t (&a)[4], uint64_t b, bool accumulate) {              \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P_RS ", 0;\n"                                             \
                   "wgmma.mma_async.sync.aligned.m64n" #kN "k16.f32." ptx_type "." ptx_type " "                  \
                   PAGEDATTN_WGMMA_D##R ", " A_RS ", " B_RS ", p, 1, 1, " TB_RS ";\n}\n"                         \
                   : PAGEDATTN_WGMMA_OUT##R                                                                      \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(static_cast<int>(accumulate)),      \
                     "n"(kTransB));                                                                              \
    }                                                                                                            \
  };
PAGEDATTN_WGMMA(64, __nv_bfloat16, "bf16", 32, "%32", "%33", "%34", "%35", "{%32, %33, %34, %35}", "%36", "%37", "%38")
PAGEDATTN_WGMMA(64, __half, "f16", 32, "%32", "%33", "%34", "%35", "{%32, %33, %34, %35}", "%36", "%37", "%38")
PAGEDATTN_WGMMA(128, __nv_bfloat16, "bf16", 64, "%64", "%65", "%66", "%67", "{%64, %65, %66, %67}", "%68", "%69", "%70")
PAGEDATTN_WGMMA(128, __half, "f16", 64, "%64", "%65", "%66", "%67", "{%64, %65, %66, %67}", "%68", "%69", "%70")
#undef PAGEDATTN_WGMMA
// d[0 .. 31] (the first 64 columns of an m64n128 accumulator) (+)= A * B (16 x 64, shared, K-major); d[32 ..]
// untouched. The asm names all 64 registers so that a branch between this and Wgmma<128, T>::ss leaves the
// accumulator in the same registers on both paths (else ptxas serializes every product of the kernel).
#define PAGEDATTN_WGMMA_FIRST_HALF(ptx_type)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                   \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." ptx_type "." ptx_type " " PAGEDATTN_WGMMA_D32        \
               ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                                                \
               : PAGEDATTN_WGMMA_OUT64                                                                       \
               : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)))
template <class T>
__device__ inline void ss_first_half(float (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>, "bf16 or f16");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    PAGEDATTN_WGMMA_FIRST_HALF("bf16");
  else
    PAGEDATTN_WGMMA_FIRST_HALF("f16");
}
#undef PAGEDATTN_WGMMA_FIRST_HALF
#else
template <int kN, class T>
struct Wgmma {
  template <int kTransB>
  __device__ static void ss(float (&)[kN / 2], uint64_t, uint64_t, bool) {}
  template <int kTransB>
  __device__ static void rs(float (&)[kN / 2], const uint32_t (&)[4], uint64_t, bool) {}
};
template <class T>
__device__ inline void ss_first_half(float (&)[64], uint64_t, uint64_t, bool) {}
#endif

}  // namespace pagedattn::cuda::wgmma
