// CUDA backend: placeholder until the CUDA decode issue lands its kernels.
#include "attention/backends.h"
#include "pagedattn/error.h"

namespace pagedattn::cuda {

void paged_attention(const PagedAttentionArgs&, const AttentionShape&) {
  throw Error(ErrorKind::invalid_argument, "paged_attention: the CUDA backend is not implemented yet");
}

void write_kv(const WriteKvArgs&, const WriteKvShape&) {
  throw Error(ErrorKind::invalid_argument, "write_kv: the CUDA backend is not implemented yet");
}

}  // namespace pagedattn::cuda
