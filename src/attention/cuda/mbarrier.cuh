// The synchronization of warp-specialized kernels (sm_90): mbarrier objects in shared memory, which count
// arrivals and complete one phase each time the expected count is reached (a cp.async copy's landing can
// be an arrival), and named barriers between warpgroups. A waiter names the phase it waits for by its
// parity: waiting for parity 1 on a fresh barrier returns at once, the "previous" phase counting as done,
// which is how a producer's first pass over empty pipeline stages goes through. PTX ISA, "Parallel
// Synchronization and Communication Instructions: mbarrier".
#pragma once

#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define PAGEDATTN_MBARRIER_DEVICE 1
#else
#define PAGEDATTN_MBARRIER_DEVICE 0
#endif

namespace pagedattn::cuda::mbarrier {

// `address`: a shared-memory address, 8-byte aligned. Visible to other threads after a __syncthreads.
__device__ inline void init(uint32_t address, int expected_arrivals) {
#if PAGEDATTN_MBARRIER_DEVICE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(address), "r"(expected_arrivals) : "memory");
#endif
}

// One arrival (release: this thread's earlier writes are visible to whoever waits for the phase).
__device__ inline void arrive(uint32_t address) {
#if PAGEDATTN_MBARRIER_DEVICE
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(address) : "memory");
#endif
}

// One arrival per warp (for barriers that count warps), once all of the warp's lanes are here.
__device__ inline void arrive_per_warp(uint32_t address) {
  __syncwarp();
  if (threadIdx.x % 32 == 0) arrive(address);
}

// One arrival once every cp.async this thread has issued so far has landed; the thread goes on at once.
__device__ inline void arrive_when_copied(uint32_t address) {
#if PAGEDATTN_MBARRIER_DEVICE
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(address) : "memory");
#endif
}

// Blocks until the phase of `parity` has completed (acquire).
__device__ inline void wait(uint32_t address, uint32_t parity) {
#if PAGEDATTN_MBARRIER_DEVICE
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
  } while (done == 0);
#endif
}

// Named barrier `id` (1-15; 0 is __syncthreads) of `threads` threads: sync waits for them all, arrive counts
// this warp in and goes on.
__device__ inline void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ inline void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace pagedattn::cuda::mbarrier
