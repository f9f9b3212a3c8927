// The backends behind the public entry points (private). Each receives arguments that
// validate_paged_attention / validate_write_kv already accepted, with the derived shape.
#pragma once

#include "pagedattn/attention.h"

namespace pagedattn::cpu {
void paged_attention(const PagedAttentionArgs& args, const AttentionShape& shape);
void write_kv(const WriteKvArgs& args, const WriteKvShape& shape);
}  // namespace pagedattn::cpu

namespace pagedattn::cuda {
void paged_attention(const PagedAttentionArgs& args, const AttentionShape& shape);
void write_kv(const WriteKvArgs& args, const WriteKvShape& shape);
}  // namespace pagedattn::cuda
