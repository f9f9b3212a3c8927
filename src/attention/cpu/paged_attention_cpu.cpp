// CPU backend. Until the SIMD kernels land (issue: CPU paged attention) this runs the reference.
#include "attention/backends.h"
#include "attention/reference.h"

namespace pagedattn::cpu {

void paged_attention(const PagedAttentionArgs& args, const AttentionShape&) { reference::paged_attention(args); }

void write_kv(const WriteKvArgs& args, const WriteKvShape&) { reference::write_kv(args); }

}  // namespace pagedattn::cpu
