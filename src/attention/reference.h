// The definition of paged_attention and write_kv: plain, slow, fp64 and written for clarity.
// Every backend is tested against it. CPU tensors only; any float dtype; any strides.
#pragma once

#include <vector>

#include "pagedattn/attention.h"

namespace pagedattn::reference {

// Returns the attention output in fp64, contiguous [T, Hq, D] (args.out is validated but not written).
std::vector<double> paged_attention_f64(const PagedAttentionArgs& args);

// Same, rounded into args.out.
void paged_attention(const PagedAttentionArgs& args);

// Stores key/value rows into their slots (rounded to the cache dtype); slot -1 is skipped.
void write_kv(const WriteKvArgs& args);

}  // namespace pagedattn::reference
