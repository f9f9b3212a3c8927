// KvCacheManager: slots of appended tokens, fork and copy-on-write, rewind, release, prefix caching, out of
// blocks as a value, and every misuse error.
#include <numeric>
#include <vector>

#include "kv/kv_testing.h"
#include "pagedattn/kv_cache_manager.h"

using namespace pagedattn;
using pagedattn::testing::error_message;

namespace {

using Ids = std::vector<BlockId>;
using Slots = std::vector<int32_t>;
using Tokens = std::vector<TokenId>;

Tokens iota_tokens(TokenId first, size_t n) {
  Tokens t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

Ids blocks_of(const KvCacheManager& m, SeqId seq) {
  const auto table = m.block_table(seq);
  return {table.begin(), table.end()};
}

// Appends (a count, or token ids) and returns the result, failing the test when the pool runs out.
template <class CountOrIds>
AppendResult must_append(KvCacheManager& m, SeqId seq, const CountOrIds& what) {
  std::optional<AppendResult> r = m.append(seq, what);
  EXPECT_TRUE(r.has_value()) << "out of blocks";
  return r.value_or(AppendResult{});
}

BlockHash constant_hash(const BlockHash&, std::span<const TokenId>) { return {42, 42}; }

}  // namespace

TEST(KvCacheManager, AppendGivesEachTokenTheSlotOfItsBlockAndOffset) {
  KvCacheManager m(8, 4);
  const SeqId s = m.add_sequence();
  EXPECT_EQ(must_append(m, s, 6).slots, Slots({0, 1, 2, 3, 4, 5}));
  const AppendResult r = must_append(m, s, 3);  // 2 fill block 1, 1 opens block 2
  EXPECT_EQ(r.slots, Slots({6, 7, 8}));
  EXPECT_FALSE(r.copy);
  EXPECT_EQ(blocks_of(m, s), Ids({0, 1, 2}));
  EXPECT_EQ(m.num_tokens(s), 9);
  EXPECT_EQ(m.pool().num_in_use(), 3);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, SlotsFollowTheBlockTableNotTheBlockOrder) {
  KvCacheManager m(4, 2);
  const SeqId a = m.add_sequence();
  const SeqId b = m.add_sequence();
  must_append(m, a, 2);  // block 0
  must_append(m, b, 1);  // block 1
  EXPECT_EQ(must_append(m, a, 1).slots, Slots({4}));   // a's second block is 2
  EXPECT_EQ(must_append(m, b, 2).slots, Slots({3, 6}));  // b fills block 1, then block 3
  EXPECT_EQ(blocks_of(m, a), Ids({0, 2}));
  EXPECT_EQ(blocks_of(m, b), Ids({1, 3}));
}

TEST(KvCacheManager, AppendingNothingChangesNothing) {
  KvCacheManager m(2, 4);
  const SeqId s = m.add_sequence();
  const AppendResult r = must_append(m, s, 0);
  EXPECT_TRUE(r.slots.empty());
  EXPECT_EQ(m.num_tokens(s), 0);
  EXPECT_TRUE(m.block_table(s).empty());
}

TEST(KvCacheManager, OutOfBlocksIsAValueAndChangesNothing) {
  KvCacheManager m(2, 4);
  const SeqId s = m.add_sequence();
  must_append(m, s, 7);
  EXPECT_EQ(m.blocks_needed(s, 2), 1);
  EXPECT_EQ(m.append(s, 2), std::nullopt);
  EXPECT_EQ(m.num_tokens(s), 7);
  EXPECT_EQ(blocks_of(m, s), Ids({0, 1}));
  EXPECT_EQ(must_append(m, s, 1).slots, Slots({7}));  // what still fits, fits
  const SeqId t = m.add_sequence();
  EXPECT_EQ(m.append(t, Tokens{1}), std::nullopt);
  EXPECT_EQ(m.num_tokens(t), 0);
  EXPECT_TRUE(m.sequence(t).tokens.empty());
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, BlocksNeededCountsNewTailBlocksAndTheCopy) {
  KvCacheManager m(8, 4);
  const SeqId s = m.add_sequence();
  EXPECT_EQ(m.blocks_needed(s, 0), 0);
  EXPECT_EQ(m.blocks_needed(s, 1), 1);
  EXPECT_EQ(m.blocks_needed(s, 9), 3);
  must_append(m, s, 3);
  EXPECT_EQ(m.blocks_needed(s, 1), 0);
  EXPECT_EQ(m.blocks_needed(s, 2), 1);
  m.fork(s);
  EXPECT_EQ(m.blocks_needed(s, 1), 1);  // the shared partial tail must be copied first
  EXPECT_EQ(m.blocks_needed(s, 2), 2);
}

TEST(KvCacheManager, ForkSharesEveryBlock) {
  KvCacheManager m(8, 4);
  const SeqId parent = m.add_sequence();
  must_append(m, parent, Tokens{1, 2, 3, 4, 5, 6});
  const SeqId child = m.fork(parent);
  EXPECT_NE(child, parent);
  EXPECT_EQ(blocks_of(m, child), blocks_of(m, parent));
  EXPECT_EQ(m.num_tokens(child), 6);
  EXPECT_EQ(m.sequence(child).tokens, m.sequence(parent).tokens);
  for (BlockId b : m.block_table(parent)) EXPECT_EQ(m.pool().refcount(b), 2);
  EXPECT_EQ(m.pool().num_in_use(), 2);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, FirstWriteIntoASharedPartialTailCopiesIt) {
  KvCacheManager m(8, 4, /*prefix_caching=*/false);
  const SeqId parent = m.add_sequence();
  must_append(m, parent, 6);  // blocks 0, 1; block 1 holds 2 tokens
  const SeqId child = m.fork(parent);

  const AppendResult r = must_append(m, child, 1);
  ASSERT_TRUE(r.copy);
  EXPECT_EQ(*r.copy, (BlockCopy{1, 2}));
  EXPECT_EQ(r.slots, Slots({2 * 4 + 2}));  // into the copy, at the same offset
  EXPECT_EQ(blocks_of(m, child), Ids({0, 2}));
  EXPECT_EQ(blocks_of(m, parent), Ids({0, 1}));
  EXPECT_EQ(m.pool().refcount(0), 2);
  EXPECT_EQ(m.pool().refcount(1), 1);
  EXPECT_EQ(m.pool().refcount(2), 1);

  const AppendResult again = must_append(m, parent, 1);  // the parent's tail is its own now
  EXPECT_FALSE(again.copy);
  EXPECT_EQ(again.slots, Slots({1 * 4 + 2}));
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, ForkAtABlockBoundaryNeedsNoCopy) {
  KvCacheManager m(8, 4);
  const SeqId parent = m.add_sequence();
  must_append(m, parent, 8);
  const SeqId child = m.fork(parent);
  const AppendResult r = must_append(m, child, 1);
  EXPECT_FALSE(r.copy);
  EXPECT_EQ(blocks_of(m, child), Ids({0, 1, 2}));
}

TEST(KvCacheManager, CopyOnWriteThatDoesNotFitChangesNothing) {
  KvCacheManager m(2, 4);
  const SeqId parent = m.add_sequence();
  must_append(m, parent, 6);
  const SeqId child = m.fork(parent);
  EXPECT_EQ(m.append(child, 1), std::nullopt);
  EXPECT_EQ(blocks_of(m, child), Ids({0, 1}));
  EXPECT_EQ(m.num_tokens(child), 6);
  EXPECT_EQ(m.pool().refcount(1), 2);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, RewindDropsTokensAndFreesEmptiedBlocks) {
  KvCacheManager m(8, 4, /*prefix_caching=*/false);  // with it, block 1 would be cached: see RewindIntoACachedBlock...
  const SeqId s = m.add_sequence();
  must_append(m, s, iota_tokens(100, 9));  // blocks 0, 1, 2
  m.rewind(s, 0);
  EXPECT_EQ(m.num_tokens(s), 9);
  m.rewind(s, 2);
  EXPECT_EQ(m.num_tokens(s), 7);
  EXPECT_EQ(blocks_of(m, s), Ids({0, 1}));
  EXPECT_EQ(m.sequence(s).tokens, iota_tokens(100, 7));
  EXPECT_EQ(m.pool().refcount(2), 0);
  EXPECT_EQ(must_append(m, s, 1).slots, Slots({7}));  // the dropped position is written again
  m.rewind(s, 8);
  EXPECT_EQ(m.num_tokens(s), 0);
  EXPECT_TRUE(m.block_table(s).empty());
  EXPECT_EQ(m.pool().num_in_use(), 0);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, RewindOfAForkLeavesTheOtherSequenceIntact) {
  KvCacheManager m(8, 4);
  const SeqId parent = m.add_sequence();
  must_append(m, parent, 8);
  const SeqId child = m.fork(parent);
  m.rewind(child, 5);
  EXPECT_EQ(blocks_of(m, child), Ids({0}));
  EXPECT_EQ(blocks_of(m, parent), Ids({0, 1}));
  EXPECT_EQ(m.pool().refcount(1), 1);
  const AppendResult r = must_append(m, child, 1);  // block 0 is still shared: copy it
  ASSERT_TRUE(r.copy);
  EXPECT_EQ(r.copy->src, 0);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, ReleaseLeavesNoTrace) {
  KvCacheManager m(8, 4, /*prefix_caching=*/false);
  const SeqId s = m.add_sequence();
  must_append(m, s, 10);
  const SeqId t = m.fork(s);
  m.release(s);
  EXPECT_FALSE(m.contains(s));
  EXPECT_EQ(m.num_sequences(), 1u);
  for (BlockId b : m.block_table(t)) EXPECT_EQ(m.pool().refcount(b), 1);
  m.release(t);
  EXPECT_EQ(m.num_sequences(), 0u);
  EXPECT_EQ(m.pool().num_free(), 8);
  EXPECT_EQ(m.add_sequence(), 2);  // ids are never reused
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, FullBlocksWithKnownTokensAreCachedAndSurviveRelease) {
  KvCacheManager m(8, 4);
  const SeqId a = m.add_sequence();
  must_append(m, a, iota_tokens(1, 10));  // 2 full blocks + 2 tokens
  EXPECT_TRUE(m.pool().is_cached(0));
  EXPECT_TRUE(m.pool().is_cached(1));
  EXPECT_FALSE(m.pool().is_cached(2));
  EXPECT_EQ(m.sequence(a).block_hashes.size(), 2u);
  m.release(a);
  EXPECT_EQ(m.pool().num_evictable(), 2);
  EXPECT_EQ(m.pool().num_free(), 6);

  const SeqId b = m.add_sequence();
  const Tokens prompt = iota_tokens(1, 11);
  EXPECT_EQ(m.attach_cached_prefix(b, prompt), 8);
  EXPECT_EQ(blocks_of(m, b), Ids({0, 1}));
  EXPECT_EQ(m.num_tokens(b), 8);
  EXPECT_EQ(m.sequence(b).tokens, iota_tokens(1, 8));
  EXPECT_EQ(m.pool().num_evictable(), 0);
  EXPECT_EQ(m.pool().refcount(0), 1);
  const AppendResult r = must_append(m, b, Tokens(prompt.begin() + 8, prompt.end()));
  EXPECT_FALSE(r.copy);
  EXPECT_EQ(r.slots.size(), 3u);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, AHitOnABlockInUseSharesIt) {
  KvCacheManager m(8, 4);
  const SeqId a = m.add_sequence();
  must_append(m, a, iota_tokens(1, 8));
  const SeqId b = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(b, iota_tokens(1, 6)), 4);  // only the first block: the prompt ends inside the second
  EXPECT_EQ(blocks_of(m, b), Ids({0}));
  EXPECT_EQ(m.pool().refcount(0), 2);
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, LookupStopsAtTheFirstDifferentBlock) {
  KvCacheManager m(8, 4);
  const SeqId a = m.add_sequence();
  must_append(m, a, Tokens{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  const SeqId b = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(b, Tokens{1, 2, 3, 4, 5, 6, 0, 8, 9, 10, 11, 12, 13}), 4);
  const SeqId c = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(c, Tokens{0, 2, 3, 4, 5, 6, 7, 8, 9}), 0);
  EXPECT_TRUE(m.block_table(c).empty());
}

TEST(KvCacheManager, AWholeCachedPromptLeavesItsLastTokenToComputeAndCopiesTheBlock) {
  KvCacheManager m(8, 4);
  const SeqId a = m.add_sequence();
  must_append(m, a, iota_tokens(1, 8));
  const SeqId b = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(b, iota_tokens(1, 8)), 7);
  EXPECT_EQ(blocks_of(m, b), Ids({0, 1}));
  const AppendResult r = must_append(m, b, Tokens{8});  // the cached block is immutable: copy it
  ASSERT_TRUE(r.copy);
  EXPECT_EQ(*r.copy, (BlockCopy{1, 2}));
  EXPECT_EQ(r.slots, Slots({2 * 4 + 3}));
  EXPECT_TRUE(m.pool().is_cached(1));
  EXPECT_EQ(m.pool().refcount(1), 1);  // a's
  EXPECT_EQ(m.sequence(b).block_chains.back(), m.pool().chain_id(1));  // same content, same chain
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, RewindIntoACachedBlockThenWritingCopiesIt) {
  KvCacheManager m(8, 4);
  const SeqId s = m.add_sequence();
  must_append(m, s, iota_tokens(1, 8));
  m.rewind(s, 1);
  EXPECT_EQ(m.sequence(s).block_hashes.size(), 1u);
  const AppendResult r = must_append(m, s, Tokens{99});
  ASSERT_TRUE(r.copy);
  EXPECT_EQ(r.copy->src, 1);
  EXPECT_EQ(m.pool().num_evictable(), 1);  // the old block keeps its content, findable
  const SeqId t = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(t, Tokens{1, 2, 3, 4, 5, 6, 7, 8, 0}), 8);
  EXPECT_EQ(blocks_of(m, t), Ids({0, 1}));
  const SeqId u = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(u, Tokens{1, 2, 3, 4, 5, 6, 7, 99, 0}), 8);
  EXPECT_EQ(blocks_of(m, u), blocks_of(m, s));
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, EvictedBlocksAreNoLongerHits) {
  KvCacheManager m(4, 2);
  const SeqId a = m.add_sequence();
  must_append(m, a, Tokens{1, 2, 3, 4, 5, 6});
  m.release(a);  // tail first: block 2 is evicted before 1, 1 before 0
  EXPECT_EQ(m.pool().num_evictable(), 3);
  const SeqId filler = m.add_sequence();
  must_append(m, filler, 3);  // takes the free block 3, then evicts block 2
  const SeqId b = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(b, Tokens{1, 2, 3, 4, 5, 6, 7}), 4);
  EXPECT_EQ(blocks_of(m, b), Ids({0, 1}));
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, TokensAppendedWithoutIdsAreNeverCached) {
  KvCacheManager m(8, 4);
  const SeqId s = m.add_sequence();
  must_append(m, s, Tokens{1, 2});
  must_append(m, s, 3);            // ids unknown from position 2 on
  must_append(m, s, Tokens{6, 7, 8});  // so these ids cannot extend the known prefix
  EXPECT_EQ(m.sequence(s).tokens, Tokens({1, 2}));
  EXPECT_FALSE(m.pool().is_cached(0));
  EXPECT_FALSE(m.pool().is_cached(1));
  m.rewind(s, 6);  // back to the known prefix: ids count again
  must_append(m, s, Tokens{3, 4});
  EXPECT_TRUE(m.pool().is_cached(0));
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, WithoutPrefixCachingNothingIsCachedOrFound) {
  KvCacheManager m(8, 4, /*prefix_caching=*/false);
  const SeqId a = m.add_sequence();
  must_append(m, a, iota_tokens(1, 8));
  EXPECT_FALSE(m.pool().is_cached(0));
  EXPECT_TRUE(m.sequence(a).block_hashes.empty());
  m.release(a);
  const SeqId b = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(b, iota_tokens(1, 9)), 0);
  EXPECT_EQ(m.pool().num_free(), 8);
}

TEST(KvCacheManager, CollidingHashesNeverReturnAnotherPrefixsBlocks) {
  KvCacheManager m(16, 2, true, constant_hash);  // every block hashes the same
  const SeqId a = m.add_sequence();
  must_append(m, a, Tokens{1, 1, 5, 5});
  const SeqId d = m.add_sequence();
  must_append(m, d, Tokens{2, 2, 5, 5});  // same second block, other parent
  const SeqId e = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(e, Tokens{2, 2, 5, 5, 9}), 4);
  EXPECT_EQ(blocks_of(m, e), blocks_of(m, d));
  const SeqId f = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(f, Tokens{3, 3, 5, 5, 9}), 0);
  const SeqId g = m.add_sequence();
  EXPECT_EQ(m.attach_cached_prefix(g, Tokens{1, 1, 5, 6, 9}), 2);
  EXPECT_EQ(blocks_of(m, g), Ids({blocks_of(m, a)[0]}));
  EXPECT_NO_THROW(m.check_invariants());
}

TEST(KvCacheManager, ConstructorRejectsBadSizes) {
  EXPECT_EQ(error_message([] { KvCacheManager m(4, 0); }), "KvCacheManager: block_size must be > 0, got 0");
  EXPECT_EQ(error_message([] { KvCacheManager m(0, 16); }), "KvCacheManager: num_blocks must be > 0, got 0");
  EXPECT_EQ(error_message([] { KvCacheManager m(1 << 20, 1 << 12); }),
            "KvCacheManager: num_blocks 1048576 x block_size 4096 = 4294967296 slots exceeds the int32 slot range");
  EXPECT_EQ(error_message([] { KvCacheManager m(4, 4, true, nullptr); }), "KvCacheManager: hasher must not be null");
}

TEST(KvCacheManager, UnknownSequencesAreRefused) {
  KvCacheManager m(4, 4);
  const SeqId s = m.add_sequence();
  m.release(s);
  const std::string gone = " unknown sequence 0 (never added, or already released)";
  EXPECT_EQ(error_message([&] { m.release(s); }), "KvCacheManager::release:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.append(s, 1); }), "KvCacheManager::append:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.append(s, Tokens{1}); }), "KvCacheManager::append:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.fork(s); }), "KvCacheManager::fork:" + gone);
  EXPECT_EQ(error_message([&] { m.rewind(s, 0); }), "KvCacheManager::rewind:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.sequence(s); }), "KvCacheManager::sequence:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.blocks_needed(s, 1); }), "KvCacheManager::blocks_needed:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.attach_cached_prefix(s, Tokens{1}); }),
            "KvCacheManager::attach_cached_prefix:" + gone);
  EXPECT_EQ(error_message([&] { (void)m.num_tokens(77); }),
            "KvCacheManager::sequence: unknown sequence 77 (never added, or already released)");
}

TEST(KvCacheManager, BadCountsAreRefused) {
  KvCacheManager m(4, 4);
  const SeqId s = m.add_sequence();
  must_append(m, s, Tokens{1, 2, 3});
  EXPECT_EQ(error_message([&] { (void)m.append(s, -1); }), "KvCacheManager::append: num_tokens must be >= 0, got -1");
  EXPECT_EQ(error_message([&] { (void)m.blocks_needed(s, -2); }),
            "KvCacheManager::blocks_needed: num_tokens must be >= 0, got -2");
  EXPECT_EQ(error_message([&] { m.rewind(s, 4); }),
            "KvCacheManager::rewind: cannot drop 4 tokens from sequence 0: expected 0 to its 3 tokens");
  EXPECT_EQ(error_message([&] { m.rewind(s, -1); }),
            "KvCacheManager::rewind: cannot drop -1 tokens from sequence 0: expected 0 to its 3 tokens");
  EXPECT_EQ(error_message([&] { (void)m.attach_cached_prefix(s, Tokens{1, 2, 3, 4, 5}); }),
            "KvCacheManager::attach_cached_prefix: sequence 0 already holds 3 tokens: expected an empty sequence");
  EXPECT_EQ(m.num_tokens(s), 3);
  EXPECT_NO_THROW(m.check_invariants());
}
