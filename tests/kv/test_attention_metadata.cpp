// The attention metadata builders: the exact arrays of attention.h's contract for a mixed batch (prefill,
// chunked prefill, decode, q_len 0), acceptance by validate_paged_attention, fixed-capacity buffers, errors.
#include <fmt/format.h>

#include <vector>

#include "kv/kv_testing.h"
#include "pagedattn/attention.h"
#include "pagedattn/attention_metadata.h"

using namespace pagedattn;
using pagedattn::testing::error_message;

namespace {

using Ints = std::vector<int32_t>;

Ints values(const TensorView& t) {
  const auto* p = t.data_as<const int32_t>();
  return {p, p + t.numel()};
}

// A manager (8 blocks of 4) holding: a = 9 tokens in 3 blocks, b = 5 tokens (a fork of a's first block, then a
// block of its own), c = 4 tokens in one block.
struct Fixture {
  KvCacheManager m{8, 4, false};
  SeqId a = m.add_sequence();
  SeqId b = -1;
  SeqId c = m.add_sequence();

  Fixture() {
    (void)m.append(a, 4);
    b = m.fork(a);
    (void)m.append(a, 5);
    (void)m.append(b, 1);
    (void)m.append(c, 4);
  }
};

}  // namespace

TEST(AttentionMetadata, FollowsTheContractOfAttentionH) {
  Fixture f;
  ASSERT_EQ(f.m.block_table(f.a).size(), 3u);
  ASSERT_EQ(f.m.block_table(f.b).size(), 2u);
  const std::vector<ScheduledSeq> batch{{f.a, 3}, {f.b, 1}, {f.c, 4}};  // chunked prefill, decode, prefill
  const AttentionMetadata md = build_attention_metadata(f.m, batch);

  ASSERT_EQ(md.block_tables.view().shape_str(), "[3, 3]");
  const Ints ta(f.m.block_table(f.a).begin(), f.m.block_table(f.a).end());
  const Ints tb(f.m.block_table(f.b).begin(), f.m.block_table(f.b).end());
  const Ints tc(f.m.block_table(f.c).begin(), f.m.block_table(f.c).end());
  EXPECT_EQ(values(md.block_tables), Ints({ta[0], ta[1], ta[2], tb[0], tb[1], -1, tc[0], -1, -1}));
  EXPECT_EQ(ta[0], tb[0]);  // shared by the fork
  EXPECT_EQ(values(md.context_lens), Ints({9, 5, 4}));
  EXPECT_EQ(values(md.query_start), Ints({0, 3, 4, 8}));
  // a's positions 6, 7, 8; b's position 4; c's 0..3.
  EXPECT_EQ(values(md.slot_mapping), Ints({ta[1] * 4 + 2, ta[1] * 4 + 3, ta[2] * 4 + 0, tb[1] * 4 + 0, tc[0] * 4 + 0,
                                           tc[0] * 4 + 1, tc[0] * 4 + 2, tc[0] * 4 + 3}));

  // paged_attention's own validation accepts it (host metadata: values checked too).
  const Tensor cache = Tensor::zeros({8, 4, 1, 2}, DType::f32);
  const Tensor query = Tensor::zeros({8, 1, 2}, DType::f32);
  const Tensor out = Tensor::zeros({8, 1, 2}, DType::f32);
  const AttentionShape shape = validate_paged_attention({.out = out, .query = query, .key_cache = cache,
                                                         .value_cache = cache, .block_tables = md.block_tables,
                                                         .context_lens = md.context_lens,
                                                         .query_start = md.query_start.view()});
  EXPECT_EQ(shape.num_seqs, 3);
  EXPECT_EQ(shape.num_tokens, 8);
  const Tensor kv = Tensor::zeros({8, 1, 2}, DType::f32);
  EXPECT_NO_THROW(validate_write_kv({.key = kv, .value = kv, .key_cache = cache, .value_cache = cache,
                                     .slot_mapping = md.slot_mapping}));
}

TEST(AttentionMetadata, ASequenceWithoutNewTokensHasAnEmptyQueryRange) {
  Fixture f;
  const std::vector<ScheduledSeq> batch{{f.c, 0}, {f.b, 2}};
  const AttentionMetadata md = build_attention_metadata(f.m, batch);
  EXPECT_EQ(values(md.query_start), Ints({0, 0, 2}));
  EXPECT_EQ(values(md.context_lens), Ints({4, 5}));
  EXPECT_EQ(md.slot_mapping.numel(), 2);
}

TEST(AttentionMetadata, AnEmptyBatchGivesEmptyTensors) {
  Fixture f;
  const AttentionMetadata md = build_attention_metadata(f.m, {});
  EXPECT_EQ(md.block_tables.view().shape_str(), "[0, 1]");
  EXPECT_EQ(md.context_lens.numel(), 0);
  EXPECT_EQ(values(md.query_start), Ints({0}));
  EXPECT_EQ(md.slot_mapping.numel(), 0);
}

TEST(AttentionMetadata, ToCopiesEveryTensor) {
  Fixture f;
  const std::vector<ScheduledSeq> batch{{f.a, 1}};
  const AttentionMetadata md = build_attention_metadata(f.m, batch);
  const AttentionMetadata copy = md.to(Device::cpu());
  EXPECT_NE(copy.slot_mapping.data(), md.slot_mapping.data());
  EXPECT_EQ(values(copy.block_tables), values(md.block_tables));
  EXPECT_EQ(values(copy.slot_mapping), values(md.slot_mapping));
  EXPECT_EQ(values(copy.query_start), Ints({0, 1}));
}

TEST(AttentionMetadata, BadBatchesAreRefused) {
  Fixture f;
  const char* op = "build_attention_metadata";
  auto build = [&](std::vector<ScheduledSeq> batch) { (void)build_attention_metadata(f.m, batch); };
  EXPECT_EQ(error_message([&] { build({{f.a, 1}, {99, 1}}); }),
            fmt::format("{}: batch[1].seq = 99: unknown sequence (never added, or already released)", op));
  EXPECT_EQ(error_message([&] { build({{f.a, 1}, {f.c, 1}, {f.a, 1}}); }),
            fmt::format("{}: batch[2].seq = {} repeats batch[0]: a sequence may appear once per step", op, f.a));
  EXPECT_EQ(error_message([&] { build({{f.c, 5}}); }),
            fmt::format("{}: batch[0].num_new_tokens = 5: expected 0 to the 4 tokens of sequence {}", op, f.c));
  EXPECT_EQ(error_message([&] { build({{f.c, -1}}); }),
            fmt::format("{}: batch[0].num_new_tokens = -1: expected 0 to the 4 tokens of sequence {}", op, f.c));
}

TEST(AttentionMetadataBuffers, MatchTheExactBuilderAtFixedAddresses) {
  Fixture f;
  AttentionMetadataBuffers buffers(4, 16, 5);
  const std::vector<ScheduledSeq> batch{{f.a, 3}, {f.b, 1}, {f.c, 4}};
  const AttentionMetadataView v = buffers.build(f.m, batch);
  const AttentionMetadata md = build_attention_metadata(f.m, batch);

  EXPECT_EQ(v.block_tables.shape_str(), "[3, 5]");
  EXPECT_TRUE(v.block_tables.is_contiguous());
  const Ints table = values(v.block_tables);
  const Ints exact = values(md.block_tables);
  for (int row = 0; row < 3; ++row) {
    for (int col = 0; col < 5; ++col) {
      EXPECT_EQ(table[static_cast<size_t>(row * 5 + col)], col < 3 ? exact[static_cast<size_t>(row * 3 + col)] : -1)
          << "row " << row << " col " << col;
    }
  }
  EXPECT_EQ(values(v.context_lens), values(md.context_lens));
  EXPECT_EQ(values(v.query_start), values(md.query_start));
  EXPECT_EQ(values(v.slot_mapping), values(md.slot_mapping));
  for (const TensorView* t : {&v.block_tables, &v.context_lens, &v.query_start, &v.slot_mapping}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 64, 0u);
  }

  const std::vector<ScheduledSeq> decode{{f.c, 1}};
  const AttentionMetadataView w = buffers.build(f.m, decode);  // the same addresses, every step
  EXPECT_EQ(w.block_tables.data, v.block_tables.data);
  EXPECT_EQ(w.slot_mapping.data, v.slot_mapping.data);
  EXPECT_EQ(values(w.query_start), Ints({0, 1}));
  EXPECT_EQ(values(w.context_lens), Ints({4}));
}

TEST(AttentionMetadataBuffers, RefuseWhatExceedsTheirCapacity) {
  Fixture f;
  AttentionMetadataBuffers buffers(2, 4, 2);
  const char* op = "AttentionMetadataBuffers::build";
  EXPECT_EQ(error_message([&] { (void)buffers.build(f.m, std::vector<ScheduledSeq>{{f.b, 1}, {f.c, 1}, {f.a, 1}}); }),
            fmt::format("{}: 3 sequences exceed max_num_seqs 2", op));
  EXPECT_EQ(error_message([&] { (void)buffers.build(f.m, std::vector<ScheduledSeq>{{f.b, 1}, {f.c, 4}}); }),
            fmt::format("{}: 5 new tokens exceed max_num_tokens 4", op));
  EXPECT_EQ(error_message([&] { (void)buffers.build(f.m, std::vector<ScheduledSeq>{{f.a, 1}}); }),
            fmt::format("{}: a sequence holds 3 blocks, more than max_blocks_per_seq 2", op));
  EXPECT_EQ(error_message([&] { (void)buffers.build(f.m, std::vector<ScheduledSeq>{{f.c, 9}}); }),
            fmt::format("{}: batch[0].num_new_tokens = 9: expected 0 to the 4 tokens of sequence {}", op, f.c));
  EXPECT_EQ(error_message([] { AttentionMetadataBuffers b(0, 4, 2); }),
            "AttentionMetadataBuffers: max_num_seqs must be > 0, got 0");
  EXPECT_EQ(error_message([] { AttentionMetadataBuffers b(1, 0, 2); }),
            "AttentionMetadataBuffers: max_num_tokens must be in [1, 2^31), got 0");
  EXPECT_EQ(error_message([] { AttentionMetadataBuffers b(1, 4, 0); }),
            "AttentionMetadataBuffers: max_blocks_per_seq must be > 0, got 0");
}
