// BlockPool: allocation, refcounts, the free and evictable queues, the prefix-cache index, and every misuse error.
#include <fmt/format.h>
#include <xxhash.h>

#include <cstring>
#include <set>
#include <vector>

#include "kv/kv_testing.h"
#include "pagedattn/block_pool.h"

using namespace pagedattn;
using pagedattn::testing::error_message;

namespace {

using Ids = std::vector<BlockId>;
using Tokens = std::vector<TokenId>;

constexpr BlockHash kHash{1, 2};

void expect_counts(const BlockPool& pool, int32_t free, int32_t evictable, int32_t in_use) {
  EXPECT_EQ(pool.num_free(), free);
  EXPECT_EQ(pool.num_evictable(), evictable);
  EXPECT_EQ(pool.num_in_use(), in_use);
  EXPECT_EQ(pool.num_available(), free + evictable);
  EXPECT_NO_THROW(pool.check_invariants());
}

// Allocates one block and caches it as `tokens` after `parent`; returns the block and its chain id.
std::pair<BlockId, ChainId> cached_block(BlockPool& pool, const BlockHash& hash, ChainId parent, const Tokens& tokens) {
  const BlockId block = pool.allocate(1)->front();
  const std::optional<ChainId> chain = pool.cache(block, hash, parent, tokens);
  EXPECT_TRUE(chain.has_value());
  return {block, chain.value_or(0)};
}

}  // namespace

TEST(BlockPool, StartsWithEveryBlockFree) {
  BlockPool pool(4);
  EXPECT_EQ(pool.num_blocks(), 4);
  expect_counts(pool, 4, 0, 0);
  for (BlockId b = 0; b < 4; ++b) {
    EXPECT_EQ(pool.refcount(b), 0);
    EXPECT_FALSE(pool.is_cached(b));
  }
}

TEST(BlockPool, AllocateHandsOutDistinctBlocksWithRefcountOne) {
  BlockPool pool(4);
  EXPECT_EQ(pool.allocate(3), Ids({0, 1, 2}));
  for (BlockId b : {0, 1, 2}) EXPECT_EQ(pool.refcount(b), 1);
  EXPECT_EQ(pool.refcount(3), 0);
  expect_counts(pool, 1, 0, 3);
}

TEST(BlockPool, AllocateIsAllOrNothing) {
  BlockPool pool(4);
  ASSERT_TRUE(pool.allocate(3));
  EXPECT_EQ(pool.allocate(2), std::nullopt);
  expect_counts(pool, 1, 0, 3);  // the failed call took nothing
  EXPECT_EQ(pool.allocate(0), Ids{});
  EXPECT_EQ(pool.allocate(1), Ids{3});
  EXPECT_EQ(pool.allocate(1), std::nullopt);
  expect_counts(pool, 0, 0, 4);
}

TEST(BlockPool, FreedBlocksJoinTheBackOfTheFreeQueue) {
  BlockPool pool(4);
  ASSERT_TRUE(pool.allocate(4));
  pool.free(Ids{2, 0});
  expect_counts(pool, 2, 0, 2);
  EXPECT_EQ(pool.allocate(2), Ids({2, 0}));
}

TEST(BlockPool, RetainSharesABlockUntilTheLastFree) {
  BlockPool pool(2);
  const BlockId b = pool.allocate(1)->front();
  pool.retain(b);
  EXPECT_EQ(pool.refcount(b), 2);
  pool.free(Ids{b});
  EXPECT_EQ(pool.refcount(b), 1);
  expect_counts(pool, 1, 0, 1);
  pool.free(Ids{b});
  expect_counts(pool, 2, 0, 0);
}

TEST(BlockPool, FreeingTheSameBlockTwiceInOneCallFollowsItsRefcount) {
  BlockPool pool(2);
  const BlockId b = pool.allocate(1)->front();
  pool.retain(b);
  pool.free(Ids{b, b});
  expect_counts(pool, 2, 0, 0);
}

TEST(BlockPool, ConstructorRejectsAnEmptyPool) {
  EXPECT_EQ(error_message([] { BlockPool pool(0); }), "BlockPool: num_blocks must be > 0, got 0");
}

TEST(BlockPool, UnknownIdsAreRefused) {
  BlockPool pool(4);
  EXPECT_EQ(error_message([&] { pool.free(Ids{7}); }), "BlockPool::free: block id 7: expected a block id in [0, 4)");
  EXPECT_EQ(error_message([&] { pool.free(Ids{-1}); }), "BlockPool::free: block id -1: expected a block id in [0, 4)");
  EXPECT_EQ(error_message([&] { pool.retain(4); }), "BlockPool::retain: block id 4: expected a block id in [0, 4)");
  EXPECT_EQ(error_message([&] { (void)pool.refcount(9); }),
            "BlockPool::refcount: block id 9: expected a block id in [0, 4)");
  EXPECT_EQ(error_message([&] { (void)pool.cache(-3, kHash, 0, Tokens{1}); }),
            "BlockPool::cache: block id -3: expected a block id in [0, 4)");
  EXPECT_EQ(error_message([&] { (void)pool.allocate(-1); }), "BlockPool::allocate: n must be >= 0, got -1");
  expect_counts(pool, 4, 0, 0);
}

TEST(BlockPool, DoubleFreeIsRefusedAndChangesNothing) {
  BlockPool pool(4);
  const Ids ids = *pool.allocate(2);
  pool.free(Ids{ids[1]});
  EXPECT_EQ(error_message([&] { pool.free(Ids{ids[0], ids[1]}); }), "BlockPool::free: block 1 is already free (double free)");
  EXPECT_EQ(pool.refcount(ids[0]), 1);  // validated before anything was released
  expect_counts(pool, 3, 0, 1);
}

TEST(BlockPool, RefcountUnderflowIsRefusedAndChangesNothing) {
  BlockPool pool(4);
  const BlockId b = pool.allocate(1)->front();
  EXPECT_EQ(error_message([&] { pool.free(Ids{b, b}); }),
            "BlockPool::free: block 0 is released 2 times but its refcount is 1 (refcount underflow)");
  EXPECT_EQ(pool.refcount(b), 1);
  expect_counts(pool, 3, 0, 1);
}

TEST(BlockPool, RetainOfAFreeUncachedBlockIsRefused) {
  BlockPool pool(4);
  EXPECT_EQ(error_message([&] { pool.retain(3); }),
            "BlockPool::retain: block 3 is free: only a block in use or a cached block can be retained");
  expect_counts(pool, 4, 0, 0);
}

TEST(BlockPool, CachedBlockIsFoundByItsKeyOnly) {
  BlockPool pool(4);
  const auto [block, chain] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{5, 6});
  EXPECT_NE(chain, BlockPool::kRootChain);
  EXPECT_TRUE(pool.is_cached(block));
  EXPECT_EQ(pool.chain_id(block), chain);
  EXPECT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{5, 6}), block);
  EXPECT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{5, 7}), std::nullopt);  // other tokens
  EXPECT_EQ(pool.find_cached(kHash, chain, Tokens{5, 6}), std::nullopt);                 // other parent
  EXPECT_EQ(pool.find_cached(BlockHash{9, 9}, BlockPool::kRootChain, Tokens{5, 6}), std::nullopt);
  expect_counts(pool, 3, 0, 1);
}

TEST(BlockPool, FreedCachedBlockStaysFindableAndAHitTakesItBack) {
  BlockPool pool(4);
  const auto [block, chain] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{5, 6});
  pool.free(Ids{block});
  expect_counts(pool, 3, 1, 0);
  ASSERT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{5, 6}), block);
  pool.retain(block);  // the hit
  EXPECT_EQ(pool.refcount(block), 1);
  EXPECT_EQ(pool.chain_id(block), chain);
  expect_counts(pool, 3, 0, 1);
}

TEST(BlockPool, FreeBlocksGoBeforeCachedOnesWhichAreEvictedLeastRecentlyReleasedFirst) {
  BlockPool pool(4);
  const auto [a, chain_a] = cached_block(pool, BlockHash{1, 0}, BlockPool::kRootChain, Tokens{1});
  const auto [b, chain_b] = cached_block(pool, BlockHash{2, 0}, BlockPool::kRootChain, Tokens{2});
  const auto [c, chain_c] = cached_block(pool, BlockHash{3, 0}, BlockPool::kRootChain, Tokens{3});
  const BlockId plain = pool.allocate(1)->front();
  pool.free(Ids{plain, a, b, c});
  expect_counts(pool, 1, 3, 0);

  EXPECT_EQ(pool.allocate(1), Ids{plain});  // no eviction while an uncached block is free
  EXPECT_EQ(pool.num_evictable(), 3);
  EXPECT_EQ(pool.allocate(1), Ids{a});  // released first, evicted first
  EXPECT_FALSE(pool.is_cached(a));
  EXPECT_EQ(pool.find_cached(BlockHash{1, 0}, BlockPool::kRootChain, Tokens{1}), std::nullopt);
  pool.retain(b);  // a hit on b takes it off the queue in O(1) ...
  EXPECT_EQ(pool.allocate(1), Ids{c});  // ... so c is next
  EXPECT_EQ(pool.allocate(1), std::nullopt);
  EXPECT_EQ(pool.find_cached(BlockHash{2, 0}, BlockPool::kRootChain, Tokens{2}), b);
  expect_counts(pool, 0, 0, 4);
}

TEST(BlockPool, IdenticalContentIsCachedOnceAndTheDuplicateGetsItsChain) {
  BlockPool pool(4);
  const auto [first, chain] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{5, 6});
  const BlockId twin = pool.allocate(1)->front();
  EXPECT_EQ(pool.cache(twin, kHash, BlockPool::kRootChain, Tokens{5, 6}), chain);
  EXPECT_FALSE(pool.is_cached(twin));
  pool.free(Ids{twin});
  expect_counts(pool, 3, 0, 1);
  EXPECT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{5, 6}), first);
}

TEST(BlockPool, HashCollisionsNeverConfuseBlocks) {
  BlockPool pool(4);
  // Same hash, different tokens; then same hash and tokens under different parents.
  const auto [x, chain_x] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{1, 2});
  const auto [y, chain_y] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{3, 4});
  const auto [x_child, chain_xc] = cached_block(pool, kHash, chain_x, Tokens{7, 7});
  const auto [y_child, chain_yc] = cached_block(pool, kHash, chain_y, Tokens{7, 7});
  EXPECT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{1, 2}), x);
  EXPECT_EQ(pool.find_cached(kHash, BlockPool::kRootChain, Tokens{3, 4}), y);
  EXPECT_EQ(pool.find_cached(kHash, chain_x, Tokens{7, 7}), x_child);
  EXPECT_EQ(pool.find_cached(kHash, chain_y, Tokens{7, 7}), y_child);
  EXPECT_EQ(pool.find_cached(kHash, chain_xc, Tokens{7, 7}), std::nullopt);
  EXPECT_EQ(std::set<ChainId>({chain_x, chain_y, chain_xc, chain_yc}).size(), 4u);  // every entry its own chain
  expect_counts(pool, 0, 0, 4);
}

TEST(BlockPool, ABlockWhoseParentWasEvictedIsNotCached) {
  BlockPool pool(2);
  const auto [parent, parent_chain] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{1});
  pool.free(Ids{parent});
  const Ids both = *pool.allocate(2);  // evicts the parent
  EXPECT_EQ(pool.cache(both[0], BlockHash{4, 4}, parent_chain, Tokens{2}), std::nullopt);
  EXPECT_FALSE(pool.is_cached(both[0]));
  expect_counts(pool, 0, 0, 2);
}

TEST(BlockPool, CacheMisuseIsRefused) {
  BlockPool pool(4);
  EXPECT_EQ(error_message([&] { (void)pool.cache(1, kHash, 0, Tokens{1}); }),
            "BlockPool::cache: block 1 is not in use: only a block a sequence holds can be cached");
  const auto [block, chain] = cached_block(pool, kHash, BlockPool::kRootChain, Tokens{1});
  EXPECT_EQ(error_message([&] { (void)pool.cache(block, kHash, 0, Tokens{1}); }),
            fmt::format("BlockPool::cache: block 0 is already cached (chain {})", chain));
  const BlockId other = pool.allocate(1)->front();
  EXPECT_EQ(error_message([&] { (void)pool.cache(other, kHash, 0, Tokens{}); }),
            "BlockPool::cache: block 1: expected the token ids of a full block, got none");
  expect_counts(pool, 2, 0, 2);
}

TEST(BlockHash, IsXxh3OfTheParentHashFollowedByTheTokens) {
  const BlockHash parent{0x0123456789abcdefull, 0xfedcba9876543210ull};
  const Tokens tokens{17, -4, 100000, 3};
  std::vector<unsigned char> bytes(16 + tokens.size() * sizeof(TokenId));
  std::memcpy(bytes.data(), &parent.low, 8);
  std::memcpy(bytes.data() + 8, &parent.high, 8);
  std::memcpy(bytes.data() + 16, tokens.data(), tokens.size() * sizeof(TokenId));
  const XXH128_hash_t expected = XXH3_128bits(bytes.data(), bytes.size());
  EXPECT_EQ(xxh3_block_hash(parent, tokens), (BlockHash{expected.low64, expected.high64}));
  EXPECT_NE(xxh3_block_hash(BlockHash{}, tokens), xxh3_block_hash(parent, tokens));
  EXPECT_NE(xxh3_block_hash(parent, Tokens{17, -4, 100000, 4}), xxh3_block_hash(parent, tokens));
}
