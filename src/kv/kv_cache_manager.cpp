#include "pagedattn/kv_cache_manager.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/check.h"
#include "core/int_math.h"
#include "kv/invariant.h"

namespace pagedattn {
namespace {

// Checked before the pool is built, so that a bad size allocates nothing.
int32_t checked_num_blocks(int32_t num_blocks, int32_t block_size, BlockHasher hasher) {
  PA_CHECK_ARG(num_blocks > 0, "KvCacheManager: num_blocks must be > 0, got {}", num_blocks);
  PA_CHECK_ARG(block_size > 0, "KvCacheManager: block_size must be > 0, got {}", block_size);
  PA_CHECK_ARG(static_cast<int64_t>(num_blocks) * block_size <= std::numeric_limits<int32_t>::max(),
               "KvCacheManager: num_blocks {} x block_size {} = {} slots exceeds the int32 slot range", num_blocks,
               block_size, static_cast<int64_t>(num_blocks) * block_size);
  PA_CHECK_ARG(hasher != nullptr, "KvCacheManager: hasher must not be null");
  return num_blocks;
}

}  // namespace

KvCacheManager::KvCacheManager(int32_t num_blocks, int32_t block_size, bool prefix_caching, BlockHasher hasher)
    : block_size_(block_size),
      prefix_caching_(prefix_caching),
      hasher_(hasher),
      pool_(checked_num_blocks(num_blocks, block_size, hasher)) {}

const SequenceCacheState& KvCacheManager::find(const char* op, SeqId seq) const {
  const auto it = sequences_.find(seq);
  PA_CHECK_ARG(it != sequences_.end(), "KvCacheManager::{}: unknown sequence {} (never added, or already released)",
               op, seq);
  return it->second;
}

SequenceCacheState& KvCacheManager::find(const char* op, SeqId seq) {
  return const_cast<SequenceCacheState&>(std::as_const(*this).find(op, seq));
}

const SequenceCacheState& KvCacheManager::sequence(SeqId seq) const { return find("sequence", seq); }

SeqId KvCacheManager::add_sequence() {
  const SeqId id = next_seq_++;
  sequences_.emplace(id, SequenceCacheState{});
  return id;
}

int64_t KvCacheManager::attach_cached_prefix(SeqId seq, std::span<const TokenId> prompt) {
  SequenceCacheState& s = find("attach_cached_prefix", seq);
  PA_CHECK_ARG(s.num_tokens == 0,
               "KvCacheManager::attach_cached_prefix: sequence {} already holds {} tokens: expected an empty sequence",
               seq, s.num_tokens);
  if (!prefix_caching_ || prompt.size() < 2) return 0;

  const size_t bs = static_cast<size_t>(block_size_);
  std::vector<BlockId> hits;
  std::vector<BlockHash> hashes;
  std::vector<std::optional<ChainId>> chains;
  BlockHash parent_hash{};
  ChainId parent = BlockPool::kRootChain;
  for (size_t i = 0; (i + 1) * bs <= prompt.size(); ++i) {
    const std::span<const TokenId> tokens = prompt.subspan(i * bs, bs);
    const BlockHash hash = hasher_(parent_hash, tokens);
    const std::optional<BlockId> hit = pool_.find_cached(hash, parent, tokens);
    if (!hit) break;
    parent = pool_.chain_id(*hit);
    parent_hash = hash;
    hits.push_back(*hit);
    hashes.push_back(hash);
    chains.emplace_back(parent);
  }

  // Leave at least one token to compute; a cut inside the last hit keeps that block (copied at the next append).
  const int64_t cached = std::min<int64_t>(static_cast<int64_t>(hits.size() * bs), std::ssize(prompt) - 1);
  hits.resize(static_cast<size_t>(ceil_div(cached, block_size_)));
  const size_t full = static_cast<size_t>(cached) / bs;
  hashes.resize(full);
  chains.resize(full);
  for (BlockId block : hits) pool_.retain(block);
  s.blocks = std::move(hits);
  s.num_tokens = cached;
  s.tokens.assign(prompt.begin(), prompt.begin() + cached);
  s.block_hashes = std::move(hashes);
  s.block_chains = std::move(chains);
  return cached;
}

KvCacheManager::AppendPlan KvCacheManager::plan_append(const SequenceCacheState& s, int64_t num_tokens) const {
  AppendPlan plan;
  if (num_tokens == 0) return plan;
  if (s.num_tokens % block_size_ != 0) {  // the first new token goes into the partial tail block
    const BlockId tail = s.blocks.back();
    plan.copy_tail = pool_.refcount(tail) > 1 || pool_.is_cached(tail);
  }
  plan.new_blocks = ceil_div(s.num_tokens + num_tokens, block_size_) - std::ssize(s.blocks);
  return plan;
}

int64_t KvCacheManager::blocks_needed(SeqId seq, int64_t num_tokens) const {
  PA_CHECK_ARG(num_tokens >= 0, "KvCacheManager::blocks_needed: num_tokens must be >= 0, got {}", num_tokens);
  const AppendPlan plan = plan_append(find("blocks_needed", seq), num_tokens);
  return plan.new_blocks + (plan.copy_tail ? 1 : 0);
}

std::optional<AppendResult> KvCacheManager::append(SeqId seq, int64_t num_tokens) {
  return append_tokens("append", seq, num_tokens, std::nullopt);
}

std::optional<AppendResult> KvCacheManager::append(SeqId seq, std::span<const TokenId> tokens) {
  return append_tokens("append", seq, std::ssize(tokens), tokens);
}

std::optional<AppendResult> KvCacheManager::append_tokens(const char* op, SeqId seq, int64_t num_tokens,
                                                          std::optional<std::span<const TokenId>> tokens) {
  SequenceCacheState& s = find(op, seq);
  PA_CHECK_ARG(num_tokens >= 0, "KvCacheManager::{}: num_tokens must be >= 0, got {}", op, num_tokens);
  const AppendPlan plan = plan_append(s, num_tokens);
  const int64_t needed = plan.new_blocks + (plan.copy_tail ? 1 : 0);
  if (needed > pool_.num_available()) return std::nullopt;
  const std::vector<BlockId> fresh = *pool_.allocate(static_cast<int32_t>(needed));

  AppendResult result;
  auto next = fresh.begin();
  if (plan.copy_tail) {
    const BlockId shared = s.blocks.back();
    result.copy = BlockCopy{shared, *next};
    s.blocks.back() = *next++;
    pool_.free(std::span(&shared, 1));
  }
  s.blocks.insert(s.blocks.end(), next, fresh.end());

  result.slots.reserve(static_cast<size_t>(num_tokens));
  for (int64_t p = s.num_tokens; p < s.num_tokens + num_tokens; ++p) {
    const int64_t block = s.blocks[static_cast<size_t>(p / block_size_)];
    result.slots.push_back(static_cast<int32_t>(block * block_size_ + p % block_size_));
  }
  // Ids extend the known prefix only if it reaches the current end.
  if (tokens && std::ssize(s.tokens) == s.num_tokens) s.tokens.insert(s.tokens.end(), tokens->begin(), tokens->end());
  s.num_tokens += num_tokens;
  if (prefix_caching_) cache_full_blocks(s);
  return result;
}

void KvCacheManager::cache_full_blocks(SequenceCacheState& s) {
  const size_t bs = static_cast<size_t>(block_size_);
  for (size_t i = s.block_hashes.size(); (i + 1) * bs <= s.tokens.size(); ++i) {
    const std::span<const TokenId> tokens(s.tokens.data() + i * bs, bs);
    const BlockHash hash = hasher_(i == 0 ? BlockHash{} : s.block_hashes[i - 1], tokens);
    const std::optional<ChainId> parent = i == 0 ? std::optional(BlockPool::kRootChain) : s.block_chains[i - 1];
    // Without a cached parent the block's prefix is unknown to the cache, so it cannot be found: skip it.
    s.block_chains.push_back(parent ? pool_.cache(s.blocks[i], hash, *parent, tokens) : std::nullopt);
    s.block_hashes.push_back(hash);
  }
}

SeqId KvCacheManager::fork(SeqId seq) {
  SequenceCacheState child = find("fork", seq);
  for (BlockId block : child.blocks) pool_.retain(block);
  const SeqId id = next_seq_++;
  sequences_.emplace(id, std::move(child));
  return id;
}

void KvCacheManager::rewind(SeqId seq, int64_t num_tokens) {
  SequenceCacheState& s = find("rewind", seq);
  PA_CHECK_ARG(num_tokens >= 0 && num_tokens <= s.num_tokens,
               "KvCacheManager::rewind: cannot drop {} tokens from sequence {}: expected 0 to its {} tokens",
               num_tokens, seq, s.num_tokens);
  const int64_t remaining = s.num_tokens - num_tokens;
  const size_t keep = static_cast<size_t>(ceil_div(remaining, block_size_));
  const std::vector<BlockId> dropped(s.blocks.rbegin(), s.blocks.rend() - static_cast<std::ptrdiff_t>(keep));
  pool_.free(dropped);
  s.blocks.resize(keep);
  s.num_tokens = remaining;
  if (std::ssize(s.tokens) > remaining) s.tokens.resize(static_cast<size_t>(remaining));
  const size_t full = s.tokens.size() / static_cast<size_t>(block_size_);
  if (s.block_hashes.size() > full) {
    s.block_hashes.resize(full);
    s.block_chains.resize(full);
  }
}

void KvCacheManager::release(SeqId seq) {
  const SequenceCacheState& s = find("release", seq);
  const std::vector<BlockId> tail_first(s.blocks.rbegin(), s.blocks.rend());
  pool_.free(tail_first);
  sequences_.erase(seq);
}

void KvCacheManager::check_invariants() const {
  pool_.check_invariants();
  const size_t bs = static_cast<size_t>(block_size_);
  std::vector<int32_t> references(static_cast<size_t>(pool_.num_blocks()), 0);
  std::vector<SeqId> last_holder(references.size(), -1);
  for (const auto& [id, s] : sequences_) {
    PA_CHECK_INVARIANT(std::ssize(s.blocks) == ceil_div(s.num_tokens, block_size_),
                       "KvCacheManager: sequence {} holds {} tokens in {} blocks of {}", id, s.num_tokens,
                       s.blocks.size(), block_size_);
    PA_CHECK_INVARIANT(std::ssize(s.tokens) <= s.num_tokens, "KvCacheManager: sequence {} knows {} ids of {} tokens",
                       id, s.tokens.size(), s.num_tokens);
    const size_t hashed = prefix_caching_ ? s.tokens.size() / bs : 0;
    PA_CHECK_INVARIANT(s.block_hashes.size() == hashed && s.block_chains.size() == hashed,
                       "KvCacheManager: sequence {} has {} block hashes and {} chains for {} full known blocks", id,
                       s.block_hashes.size(), s.block_chains.size(), hashed);
    for (BlockId block : s.blocks) {
      PA_CHECK_INVARIANT(block >= 0 && block < pool_.num_blocks(), "KvCacheManager: sequence {} holds block id {}",
                         id, block);
      const size_t b = static_cast<size_t>(block);
      PA_CHECK_INVARIANT(last_holder[b] != id, "KvCacheManager: sequence {} holds block {} twice", id, block);
      last_holder[b] = id;
      ++references[b];
    }
  }
  for (BlockId block = 0; block < pool_.num_blocks(); ++block) {
    PA_CHECK_INVARIANT(pool_.refcount(block) == references[static_cast<size_t>(block)],
                       "KvCacheManager: block {} has refcount {} but {} sequences reference it", block,
                       pool_.refcount(block), references[static_cast<size_t>(block)]);
  }
}

}  // namespace pagedattn
