// BlockPool: the fixed set of KV-cache blocks that all sequences and all layers share (DESIGN.md §4):
// per-block refcounts, the queues of unreferenced blocks, and the prefix cache of full blocks.
//
// Every block is in exactly one of three states, so num_free() + num_evictable() + num_in_use() == num_blocks():
//   free       refcount 0, holds nothing reusable             allocated first
//   evictable  refcount 0, a cached full block                reusable by a prefix hit until evicted, LRU first
//   in use     refcount > 0 (cached or not)
// Both unreferenced states are intrusive doubly linked queues, so a cached block that is hit again leaves the
// evictable queue in O(1) and the least recently released one is evicted first.
//
// Prefix cache. A full block is cached under its key (parent chain, token ids). A ChainId names one exact
// cached prefix: kRootChain is the empty prefix, and each block that enters the cache gets a fresh id that is
// never reused. Lookups go through a 128-bit chained hash of the token ids (xxh3-128 of parent hash + tokens),
// and a hit also compares the stored parent chain and token ids, so a hash collision can never return a block
// that holds another prefix's KV.
//
// Misuse (an id outside [0, num_blocks), a double free, a refcount underflow) is a programming error and throws
// pagedattn::Error; running out of blocks is an ordinary outcome and is returned as std::nullopt.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace pagedattn {

using BlockId = int32_t;
using TokenId = int32_t;
using ChainId = uint64_t;

struct BlockHash {
  uint64_t low = 0;
  uint64_t high = 0;
  friend bool operator==(const BlockHash&, const BlockHash&) = default;
};

// The hash of a full block from its parent's hash (BlockHash{} for a sequence's first block) and its tokens.
using BlockHasher = BlockHash (*)(const BlockHash& parent, std::span<const TokenId> tokens);

// The default BlockHasher: xxh3-128 of the parent hash's 16 bytes followed by the token ids.
BlockHash xxh3_block_hash(const BlockHash& parent, std::span<const TokenId> tokens);

class BlockPool {
 public:
  static constexpr ChainId kRootChain = 0;  // the empty prefix: parent of every sequence's first block

  explicit BlockPool(int32_t num_blocks);
  ~BlockPool();
  BlockPool(BlockPool&&) noexcept;
  BlockPool& operator=(BlockPool&&) noexcept;

  int32_t num_blocks() const;
  int32_t num_free() const;       // unreferenced, not cached
  int32_t num_evictable() const;  // unreferenced, cached
  int32_t num_in_use() const;     // refcount > 0
  int32_t num_available() const { return num_free() + num_evictable(); }  // what allocate() can hand out
  int32_t refcount(BlockId block) const;
  bool is_cached(BlockId block) const;
  ChainId chain_id(BlockId block) const;  // the prefix a cached block completes; kRootChain when not cached

  // n blocks with refcount 1: free blocks first, then cached ones evicted least recently released first.
  // All or nothing: std::nullopt, with nothing changed, when fewer than n are available.
  std::optional<std::vector<BlockId>> allocate(int32_t n);

  // refcount++ of a block in use, or of an evictable block (a prefix hit takes it off the evictable queue).
  void retain(BlockId block);

  // refcount-- of each block, in order; a block that reaches 0 joins the back of the free queue, or of the
  // evictable queue if cached (release a sequence tail first, so that its deepest blocks are evicted first).
  // Checks the whole list first and changes nothing if an id is unknown, a block is already free (double
  // free) or a block appears more times than its refcount (underflow).
  void free(std::span<const BlockId> blocks);

  // The cached block holding exactly `tokens` after the prefix `parent`, or std::nullopt.
  std::optional<BlockId> find_cached(const BlockHash& hash, ChainId parent, std::span<const TokenId> tokens) const;

  // Caches the full, in-use block `block` as `tokens` after `parent` and returns the chain id of that content:
  // a fresh one, or the id of an identical block already cached (then `block` stays uncached: a duplicate).
  // std::nullopt when `parent` is no longer cached (the block could never be reached by a lookup).
  std::optional<ChainId> cache(BlockId block, const BlockHash& hash, ChainId parent, std::span<const TokenId> tokens);

  // Throws pagedattn::Error (ErrorKind::runtime) naming the first broken invariant: queue membership matches
  // refcount and cached state, the three counts add up, the hash and chain indexes match the blocks.
  void check_invariants() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pagedattn
