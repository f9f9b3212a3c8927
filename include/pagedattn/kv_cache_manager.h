// KvCacheManager: the block tables of all sequences over one BlockPool (DESIGN.md §4). It decides which
// slot each token's KV goes to; it never touches KV memory itself (KvCache does, see kv_cache.h).
//
// A sequence's token p lives in slot blocks[p / block_size] * block_size + p % block_size, the same slot in
// every layer. Blocks are shared between sequences by fork() and by prefix-cache hits; a shared block, or a
// cached one, is never written: before the first write into such a tail block, append() moves the sequence
// to a fresh block and returns the copy (src -> dst) the caller must make on the KV memory (copy-on-write).
//
// Running out of blocks is reported as std::nullopt and leaves every sequence and the pool unchanged, so
// the scheduler can preempt and retry. Misuse (an unknown sequence, rewinding past the start, ...) throws
// pagedattn::Error. Not thread-safe: one thread (the scheduler's) drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "pagedattn/block_pool.h"

namespace pagedattn {

using SeqId = int64_t;

// What the cache knows of one sequence. Read it through KvCacheManager::sequence(); only the manager
// changes it.
struct SequenceCacheState {
  std::vector<BlockId> blocks;  // the block table: blocks.size() == ceil(num_tokens / block_size)
  int64_t num_tokens = 0;       // tokens whose KV has a slot
  std::vector<TokenId> tokens;  // ids of the first tokens.size() <= num_tokens tokens: those appended with ids
  // Prefix-cache bookkeeping, one entry per full block inside `tokens`: its chained hash, and the cached
  // prefix (ChainId) its content equals, if that prefix is known to the cache.
  std::vector<BlockHash> block_hashes;
  std::vector<std::optional<ChainId>> block_chains;
};

struct BlockCopy {
  BlockId src = 0;
  BlockId dst = 0;
  friend bool operator==(const BlockCopy&, const BlockCopy&) = default;
};

struct AppendResult {
  std::vector<int32_t> slots;     // the slot of each new token, in order
  std::optional<BlockCopy> copy;  // copy-on-write to perform on every layer before writing the new tokens
};

class KvCacheManager {
 public:
  // num_blocks * block_size must fit the int32 slot range. With prefix_caching off, no block is ever cached
  // and attach_cached_prefix() returns 0. `hasher` exists so tests can force hash collisions.
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool prefix_caching = true,
                 BlockHasher hasher = xxh3_block_hash);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  const BlockPool& pool() const { return pool_; }
  int32_t num_available_blocks() const { return pool_.num_available(); }

  // A new, empty sequence. Ids are never reused.
  SeqId add_sequence();

  // For an empty sequence about to receive `prompt`: attaches the longest run of cached full blocks that
  // begins the prompt (refcount++) and returns how many tokens they cover. The result is at most
  // prompt.size() - 1, so at least one token is left to compute (the model needs the last prompt token's
  // logits); when that cuts into the last attached block, the next append copies it (copy-on-write).
  // The caller then appends the rest: append(seq, prompt.subspan(result)).
  int64_t attach_cached_prefix(SeqId seq, std::span<const TokenId> prompt);

  // Gives num_tokens new tokens a slot each, allocating tail blocks as needed. With token ids the blocks they
  // fill become findable by prefix lookups at once (ids continue the known prefix only if every earlier token
  // was appended with ids), so the caller must store the tokens' KV at these slots in the same step, before
  // the forward pass of any sequence that attaches those blocks. std::nullopt, with nothing changed, when the
  // pool has too few blocks.
  std::optional<AppendResult> append(SeqId seq, int64_t num_tokens);
  std::optional<AppendResult> append(SeqId seq, std::span<const TokenId> tokens);

  // The blocks append(seq, num_tokens) would allocate now (new tail blocks, plus one for a copy-on-write).
  int64_t blocks_needed(SeqId seq, int64_t num_tokens) const;

  // A new sequence sharing all of seq's blocks (refcount++). Allocates nothing, so it cannot run out of
  // blocks: the copy of a shared partial tail happens at the next append of either sequence.
  SeqId fork(SeqId seq);

  // Drops the last num_tokens tokens (speculative decoding, stop-string rollback); blocks left empty are freed.
  void rewind(SeqId seq, int64_t num_tokens);

  // Frees all of seq's blocks (tail first, so cached ones are evicted deepest first) and forgets seq.
  void release(SeqId seq);

  bool contains(SeqId seq) const { return sequences_.contains(seq); }
  const SequenceCacheState& sequence(SeqId seq) const;  // valid until seq is released
  int64_t num_tokens(SeqId seq) const { return sequence(seq).num_tokens; }
  std::span<const BlockId> block_table(SeqId seq) const { return sequence(seq).blocks; }
  size_t num_sequences() const { return sequences_.size(); }

  // Throws pagedattn::Error (ErrorKind::runtime) on the first broken invariant of DESIGN.md §4: the pool's
  // own, each block's refcount equals the number of sequences referencing it, each table has exactly the
  // blocks its token count needs.
  void check_invariants() const;

 private:
  struct AppendPlan {
    bool copy_tail = false;
    int64_t new_blocks = 0;
  };
  SequenceCacheState& find(const char* op, SeqId seq);
  const SequenceCacheState& find(const char* op, SeqId seq) const;
  AppendPlan plan_append(const SequenceCacheState& s, int64_t num_tokens) const;
  std::optional<AppendResult> append_tokens(const char* op, SeqId seq, int64_t num_tokens,
                                            std::optional<std::span<const TokenId>> tokens);
  void cache_full_blocks(SequenceCacheState& s);

  int32_t block_size_;
  bool prefix_caching_;
  BlockHasher hasher_;
  BlockPool pool_;
  std::unordered_map<SeqId, SequenceCacheState> sequences_;
  SeqId next_seq_ = 0;
};

}  // namespace pagedattn
