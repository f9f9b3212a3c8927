// One test per condition of DESIGN.md §2: each bad argument is refused by the shared validation with an
// error naming the argument, the expected and the actual value, before any data is read.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/paged_problem.h"
#include "pagedattn/error.h"

using namespace pagedattn;
using namespace pagedattn::testing;

namespace {

// A valid varlen problem: 3 sequences, context 20/33/5, q_len 1/4/5, block 8, Hq 6 over Hkv 2, D 16.
Problem valid_problem() {
  return make_problem({.context_lens = {20, 33, 5}, .q_lens = {1, 4, 5}, .num_q_heads = 6, .num_kv_heads = 2,
                       .head_dim = 16, .block_size = 8, .extra_table_columns = 2});
}

// Runs the public entry point and returns the error, failing the test if none or of another kind.
std::string error_of(const PagedAttentionArgs& a, ErrorKind kind = ErrorKind::invalid_argument) {
  try {
    paged_attention(a);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "paged_attention accepted bad arguments";
  return {};
}

std::string error_of(const WriteKvArgs& a, ErrorKind kind = ErrorKind::invalid_argument) {
  try {
    write_kv(a);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "write_kv accepted bad arguments";
  return {};
}

#define EXPECT_MESSAGE(message, fragment) \
  EXPECT_NE((message).find(fragment), std::string::npos) << "message: " << (message) << "\nwanted: " << (fragment)

int32_t* ints(const Tensor& t) { return t.data_as<int32_t>(); }

}  // namespace

TEST(Validation, AcceptsTheValidProblem) {
  const Problem p = valid_problem();
  EXPECT_NO_THROW(paged_attention(p.args()));
  const AttentionShape s = validate_paged_attention(p.args());
  EXPECT_EQ(s.num_seqs, 3);
  EXPECT_EQ(s.num_tokens, 10);
  EXPECT_EQ(s.group_size(), 3);
  EXPECT_EQ(s.block_size, 8);
  EXPECT_FLOAT_EQ(s.scale, 0.25f);
}

TEST(Validation, QueryRank) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query.ndim = 2;
  EXPECT_MESSAGE(error_of(a), "query must have rank 3 [num_tokens, num_heads, head_dim], got rank 2");
}

TEST(Validation, CacheRank) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.value_cache.ndim = 3;
  EXPECT_MESSAGE(error_of(a), "value_cache must have rank 4");
}

TEST(Validation, QueryDtype) {
  Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query.dtype = DType::i32;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "query must be float32, float16 or bfloat16, got int32");
}

TEST(Validation, CacheDtypeMismatch) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.key_cache.dtype = DType::f16;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "key_cache must be float32, got float16");
}

TEST(Validation, OutDtypeMismatch) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.out.dtype = DType::bf16;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "out must be float32, got bfloat16");
}

TEST(Validation, MetadataMustBeInt32) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.block_tables.dtype = DType::i64;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "block_tables must be int32, got int64");
  a = p.args();
  a.context_lens.dtype = DType::f32;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "context_lens must be int32, got float32");
  a = p.args();
  a.query_start->dtype = DType::i64;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "query_start must be int32, got int64");
}

TEST(Validation, MixedDevices) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.key_cache.device = Device::cuda(0);
  EXPECT_MESSAGE(error_of(a), "key_cache is on cuda:0 but query is on cpu: all tensors must be on one device");
  a = p.args();
  a.block_tables.device = Device::cuda(1);
  EXPECT_MESSAGE(error_of(a), "block_tables is on cuda:1 but query is on cpu");
}

TEST(Validation, HeadDimMismatch) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query.shape[2] = 8;
  a.out.shape[2] = 8;
  EXPECT_MESSAGE(error_of(a), "key_cache head_dim 16 must equal query head_dim 8");
}

TEST(Validation, HeadsNotAMultipleOfKvHeads) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query.shape[1] = 5;
  a.out.shape[1] = 5;
  EXPECT_MESSAGE(error_of(a), "query heads (5) must be a multiple of key/value heads (2)");
}

TEST(Validation, KeyAndValueCacheShapesDiffer) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.value_cache.shape[0] -= 1;
  EXPECT_MESSAGE(error_of(a), "value_cache shape");
  EXPECT_MESSAGE(error_of(a), "must equal key_cache shape");
}

// Caches of 2^31 slots or more (shapes only: these views would reach far past their data) are refused
// before anything is read, by both entry points: slot ids are int32.
TEST(Validation, CacheSlotsBeyondInt32) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.key_cache.shape[0] = a.value_cache.shape[0] = (int64_t{1} << 31) / 8;
  EXPECT_MESSAGE(error_of(a), "key_cache holds 268435456 blocks x 8 slots = 2147483648: expected at most 2^31 - 1 slots");
  a.key_cache.shape[0] = a.value_cache.shape[0] = (int64_t{1} << 31) / 8 - 1;
  EXPECT_NO_THROW(paged_attention(a)) << "the largest cache that fits is accepted (its blocks are never reached)";
}

// A cache whose slot (num_kv_heads x head_dim elements) spans 4 GiB or more is refused by both entry points:
// the CUDA kernels address within a slot's row with 32 bits. Shapes and strides only, as above.
void widen_slots(TensorView& cache, int64_t num_kv_heads) {
  cache.shape[2] = num_kv_heads;
  cache.strides[1] = num_kv_heads * cache.shape[3];
  cache.strides[0] = cache.shape[1] * cache.strides[1];
}

TEST(Validation, CacheSlotsOf4GiB) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  widen_slots(a.key_cache, int64_t{1} << 26);  // x 16 dims x 4 bytes = 2^32
  widen_slots(a.value_cache, int64_t{1} << 26);
  EXPECT_MESSAGE(error_of(a), "a key_cache slot holds 67108864 KV heads x 16 dims x 4 bytes = 4294967296 bytes: "
                              "expected at most 2^32 - 1");
  widen_slots(a.key_cache, (int64_t{1} << 26) - 1);  // 2^32 - 64 bytes: refused later, by the query's heads
  widen_slots(a.value_cache, (int64_t{1} << 26) - 1);
  EXPECT_MESSAGE(error_of(a), "query heads (6) must be a multiple of key/value heads (67108863)");
}

TEST(Validation, OutShapeDiffers) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.out.shape[0] = 9;
  EXPECT_MESSAGE(error_of(a), "out shape [9, 6, 16] must equal query shape [10, 6, 16]");
}

TEST(Validation, TableRowsDifferFromSequences) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.block_tables.shape[0] = 2;
  EXPECT_MESSAGE(error_of(a), "block_tables has 2 rows but context_lens has 3 sequences");
}

TEST(Validation, QueryStartLength) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query_start->shape[0] = 3;
  EXPECT_MESSAGE(error_of(a), "query_start must have num_seqs + 1 = 4 entries, got 3");
}

TEST(Validation, DecodeNeedsOneRowPerSequence) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.query_start.reset();
  EXPECT_MESSAGE(error_of(a), "without query_start every sequence has one query row: expected query.shape[0] == 3");
}

TEST(Validation, NonContiguousCache) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.key_cache.strides[0] *= 2;
  EXPECT_MESSAGE(error_of(a), "key_cache must be contiguous");
}

TEST(Validation, StridedQueryRowsAreAcceptedButNotNegativeOrStridedHeadDim) {
  const Problem p = valid_problem();
  // A query with padded rows (as a slice of a fused QKV tensor) is fine.
  Tensor wide = Tensor::empty({10, 6, 32}, DType::f32);
  fill_constant(wide, 0.5);
  PagedAttentionArgs a = p.args();
  a.query = TensorView(wide.data(), DType::f32, std::vector<int64_t>{10, 6, 16}, std::vector<int64_t>{192, 32, 1});
  EXPECT_NO_THROW(paged_attention(a));
  a.query.strides[2] = 2;
  EXPECT_MESSAGE(error_of(a), "query must be contiguous in its last dimension (stride 1), got strides [192, 32, 2]");
  a = p.args();
  a.out.strides[0] = -a.out.strides[0];
  EXPECT_MESSAGE(error_of(a), "out has a negative stride");
}

TEST(Validation, NegativeContextLength) {
  const Problem p = valid_problem();
  ints(p.context_lens)[1] = -4;
  EXPECT_MESSAGE(error_of(p.args()), "context_lens[1] must be >= 0, got -4");
}

TEST(Validation, ContextNotCoveredByTable) {
  const Problem p = valid_problem();
  const int64_t cols = p.block_tables.size(1);  // 5 live + 2 extra = 7 columns of 8 tokens
  ints(p.context_lens)[1] = static_cast<int32_t>(cols * 8 + 1);
  EXPECT_MESSAGE(error_of(p.args()),
                 fmt::format("context_lens[1] = {} needs {} blocks of 8 tokens but block_tables has {} columns",
                             cols * 8 + 1, cols + 1, cols));
}

TEST(Validation, LiveBlockIdOutOfRange) {
  const Problem p = valid_problem();
  const int64_t cols = p.block_tables.size(1), num_blocks = p.key_cache.size(0);
  ints(p.block_tables)[1 * cols + 3] = static_cast<int32_t>(num_blocks);
  EXPECT_MESSAGE(error_of(p.args()),
                 fmt::format("block_tables[1][3] = {}: expected a block id in [0, {})", num_blocks, num_blocks));
  ints(p.block_tables)[1 * cols + 3] = -1;
  EXPECT_MESSAGE(error_of(p.args()), "block_tables[1][3] = -1");
}

TEST(Validation, IdsPastTheLiveBlocksAreIgnored) {
  const Problem p = valid_problem();
  const int64_t cols = p.block_tables.size(1);
  ints(p.block_tables)[2 * cols + 1] = 1 << 30;  // sequence 2 (5 tokens) uses only column 0
  EXPECT_NO_THROW(paged_attention(p.args()));
}

TEST(Validation, QueryStartNotStartingAtZero) {
  const Problem p = valid_problem();
  ints(p.query_start)[0] = 1;
  EXPECT_MESSAGE(error_of(p.args()), "query_start[0] must be 0, got 1");
}

TEST(Validation, QueryStartNotEndingAtT) {
  const Problem p = valid_problem();
  ints(p.query_start)[3] = 9;
  EXPECT_MESSAGE(error_of(p.args()), "query_start[3] must equal the number of query rows 10, got 9");
}

TEST(Validation, QueryStartDecreasing) {
  const Problem p = valid_problem();
  ints(p.query_start)[2] = 0;  // [0, 1, 0, 10]
  EXPECT_MESSAGE(error_of(p.args()), "query_start must be non-decreasing: query_start[2]=0 < query_start[1]=1");
}

TEST(Validation, MoreQueryRowsThanContext) {
  const Problem p = valid_problem();
  ints(p.context_lens)[2] = 4;  // 5 query rows
  EXPECT_MESSAGE(error_of(p.args()), "sequence 2 has 5 query rows but context_lens[2] = 4: expected q_len <= context_len");
}

TEST(Validation, DecodeWithEmptyContext) {
  Problem p = make_problem({.context_lens = {3, 4}});
  ints(p.context_lens)[0] = 0;
  EXPECT_MESSAGE(error_of(p.args()), "sequence 0 has 1 query rows but context_lens[0] = 0");
}

TEST(Validation, NonFiniteScale) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.scale = std::numeric_limits<float>::infinity();
  EXPECT_MESSAGE(error_of(a), "scale must be finite, got inf");
}

TEST(Validation, NullData) {
  const Problem p = valid_problem();
  PagedAttentionArgs a = p.args();
  a.key_cache.data = nullptr;
  EXPECT_MESSAGE(error_of(a), "key_cache has a null data pointer");
}

TEST(Validation, ZeroSizedBatchesAreNoOps) {
  Tensor q = Tensor::empty({0, 4, 8}, DType::f32), out = Tensor::empty({0, 4, 8}, DType::f32);
  Tensor kc = Tensor::empty({2, 4, 2, 8}, DType::f32), vc = Tensor::empty({2, 4, 2, 8}, DType::f32);
  Tensor bt = Tensor::empty({0, 1}, DType::i32), cl = Tensor::empty({0}, DType::i32);
  EXPECT_NO_THROW(paged_attention({out, q, kc, vc, bt, cl}));
  Tensor zero_heads = Tensor::empty({0, 0, 8}, DType::f32);
  EXPECT_MESSAGE(error_of({zero_heads, zero_heads, kc, vc, bt, cl}), "query must have at least one head");
  Tensor no_blocks_per_head = Tensor::empty({2, 0, 2, 8}, DType::f32);
  EXPECT_MESSAGE(error_of({out, q, no_blocks_per_head, no_blocks_per_head, bt, cl}),
                 "block_size (key_cache dimension 1) must be > 0, got 0");
}

// write_kv

namespace {
struct WriteProblem {
  Tensor key = Tensor::zeros({3, 2, 16}, DType::f32), value = Tensor::zeros({3, 2, 16}, DType::f32);
  Tensor key_cache = Tensor::zeros({4, 8, 2, 16}, DType::f32), value_cache = Tensor::zeros({4, 8, 2, 16}, DType::f32);
  Tensor slots = Tensor::zeros({3}, DType::i32);
  WriteKvArgs args() const { return {key, value, key_cache, value_cache, slots}; }
};
}  // namespace

TEST(ValidationWriteKv, AcceptsValidArguments) {
  WriteProblem w;
  ints(w.slots)[0] = 31, ints(w.slots)[1] = -1, ints(w.slots)[2] = 0;
  EXPECT_NO_THROW(write_kv(w.args()));
}

TEST(ValidationWriteKv, SlotOutOfRange) {
  WriteProblem w;
  ints(w.slots)[1] = 32;
  EXPECT_MESSAGE(error_of(w.args()), "slot_mapping[1] = 32: expected -1 or a slot in [0, 32) (num_blocks 4 x block_size 8)");
  ints(w.slots)[1] = -2;
  EXPECT_MESSAGE(error_of(w.args()), "slot_mapping[1] = -2");
}

TEST(ValidationWriteKv, CacheSlotsBeyondInt32) {
  WriteProblem w;
  WriteKvArgs a = w.args();
  a.key_cache.shape[0] = a.value_cache.shape[0] = int64_t{1} << 28;
  EXPECT_MESSAGE(error_of(a), "write_kv: key_cache holds 268435456 blocks x 8 slots = 2147483648: expected at most 2^31 - 1 slots");
}

TEST(ValidationWriteKv, CacheSlotsOf4GiB) {
  WriteProblem w;
  WriteKvArgs a = w.args();
  widen_slots(a.key_cache, int64_t{1} << 26);
  widen_slots(a.value_cache, int64_t{1} << 26);
  EXPECT_MESSAGE(error_of(a), "write_kv: a key_cache slot holds 67108864 KV heads x 16 dims x 4 bytes = 4294967296 bytes");
}

TEST(ValidationWriteKv, ShapesAndDtypes) {
  WriteProblem w;
  WriteKvArgs a = w.args();
  a.key.shape[1] = 3;
  EXPECT_MESSAGE(error_of(a), "key shape [3, 3, 16] must be [num_tokens, 2, 16] to match key_cache [4, 8, 2, 16]");
  a = w.args();
  a.value.shape[0] = 2;
  EXPECT_MESSAGE(error_of(a), "value shape [2, 2, 16] must equal key shape [3, 2, 16]");
  a = w.args();
  a.slot_mapping.shape[0] = 4;
  EXPECT_MESSAGE(error_of(a), "slot_mapping has 4 entries but key has 3 rows");
  a = w.args();
  a.slot_mapping.dtype = DType::i64;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "slot_mapping must be int32, got int64");
  a = w.args();
  a.value_cache.dtype = DType::bf16;
  EXPECT_MESSAGE(error_of(a, ErrorKind::type_error), "value_cache must be float32, got bfloat16");
  a = w.args();
  a.value.device = Device::cuda(0);
  EXPECT_MESSAGE(error_of(a), "value is on cuda:0 but key is on cpu");
}
