// write_kv: scatters this step's K/V rows into their cache slots. One thread per 16-byte piece (or one
// element when rows are not 16-byte aligned) of each (token, KV head) row; slot -1 is padding and
// skipped, any other slot outside the cache is recorded as a device error and skipped. Bound: memory.
#pragma once

#include <type_traits>

#include "attention/cuda/decode_params.h"
#include "attention/cuda/device_error.cuh"

namespace pagedattn::cuda {

inline constexpr int kWriteKvThreads = 256;

template <class T, bool kVector>
__global__ void __launch_bounds__(kWriteKvThreads) write_kv_kernel(const __grid_constant__ WriteKvParams p) {
  constexpr int kElems = kVector ? 16 / sizeof(T) : 1;
  using Piece = std::conditional_t<kVector, uint4, T>;
  const int pieces = p.head_dim / kElems;
  const long long i = static_cast<long long>(blockIdx.x) * kWriteKvThreads + threadIdx.x;
  if (i >= static_cast<long long>(p.num_tokens) * p.num_kv_heads * pieces) return;
  const int token = static_cast<int>(i / (static_cast<long long>(p.num_kv_heads) * pieces));
  const int rest = static_cast<int>(i - static_cast<long long>(token) * p.num_kv_heads * pieces);
  const int head = rest / pieces, piece = rest - head * pieces;
  const int slot = p.slot_mapping[token];
  if (slot == -1) return;
  if (slot < -1 || slot >= p.num_slots) {
    if (head == 0 && piece == 0) record_device_error(p.error, DeviceErrorCode::slot, 0, token, slot, p.num_slots);
    return;
  }
  const long long dst = (static_cast<long long>(slot) * p.num_kv_heads + head) * p.head_dim + piece * kElems;
  const T* k = static_cast<const T*>(p.key) + token * p.k_stride_token + head * p.k_stride_head + piece * kElems;
  const T* v = static_cast<const T*>(p.value) + token * p.v_stride_token + head * p.v_stride_head + piece * kElems;
  *reinterpret_cast<Piece*>(static_cast<T*>(p.key_cache) + dst) = *reinterpret_cast<const Piece*>(k);
  *reinterpret_cast<Piece*>(static_cast<T*>(p.value_cache) + dst) = *reinterpret_cast<const Piece*>(v);
}

}  // namespace pagedattn::cuda
