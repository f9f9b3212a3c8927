#include "pagedattn/block_pool.h"

#include <algorithm>
#include <unordered_map>

#include "core/check.h"
#include "kv/block_queue.h"
#include "kv/invariant.h"

namespace pagedattn {
namespace {

struct BlockHashKey {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.low ^ (h.high * 0x9e3779b97f4a7c15ull)); }
};

}  // namespace

struct BlockPool::State {
  struct Block {
    int32_t refcount = 0;
    ChainId chain = kRootChain;  // kRootChain: not cached
    ChainId parent = kRootChain;
    BlockHash hash;
    std::vector<TokenId> tokens;
  };

  explicit State(int32_t n) : blocks(static_cast<size_t>(n)), free(n), evictable(n) {}

  Block& at(BlockId id) { return blocks[static_cast<size_t>(id)]; }
  const Block& at(BlockId id) const { return blocks[static_cast<size_t>(id)]; }
  int32_t size() const { return static_cast<int32_t>(blocks.size()); }

  void check_id(const char* op, BlockId id) const {
    PA_CHECK_ARG(id >= 0 && id < size(), "BlockPool::{}: block id {}: expected a block id in [0, {})", op, id, size());
  }

  // Takes an evictable block out of the cache: it becomes an ordinary unreferenced block.
  void uncache(BlockId id) {
    Block& b = at(id);
    auto [first, last] = by_hash.equal_range(b.hash);
    for (auto it = first; it != last; ++it) {
      if (it->second == id) {
        by_hash.erase(it);
        break;
      }
    }
    by_chain.erase(b.chain);
    b.chain = b.parent = kRootChain;
    b.hash = {};
    b.tokens.clear();
  }

  std::vector<Block> blocks;
  kv::BlockQueue free;       // refcount 0, not cached
  kv::BlockQueue evictable;  // refcount 0, cached; front = least recently released
  std::unordered_multimap<BlockHash, BlockId, BlockHashKey> by_hash;  // every cached block, in use or not
  std::unordered_map<ChainId, BlockId> by_chain;                      // the chains that are still cached
  ChainId next_chain = kRootChain + 1;
  int32_t in_use = 0;
};

BlockPool::BlockPool(int32_t num_blocks) {
  PA_CHECK_ARG(num_blocks > 0, "BlockPool: num_blocks must be > 0, got {}", num_blocks);
  state_ = std::make_unique<State>(num_blocks);
  for (BlockId id = 0; id < num_blocks; ++id) state_->free.push_back(id);
}

BlockPool::~BlockPool() = default;
BlockPool::BlockPool(BlockPool&&) noexcept = default;
BlockPool& BlockPool::operator=(BlockPool&&) noexcept = default;

int32_t BlockPool::num_blocks() const { return state_->size(); }
int32_t BlockPool::num_free() const { return state_->free.size(); }
int32_t BlockPool::num_evictable() const { return state_->evictable.size(); }
int32_t BlockPool::num_in_use() const { return state_->in_use; }

int32_t BlockPool::refcount(BlockId block) const {
  state_->check_id("refcount", block);
  return state_->at(block).refcount;
}

bool BlockPool::is_cached(BlockId block) const {
  state_->check_id("is_cached", block);
  return state_->at(block).chain != kRootChain;
}

ChainId BlockPool::chain_id(BlockId block) const {
  state_->check_id("chain_id", block);
  return state_->at(block).chain;
}

std::optional<std::vector<BlockId>> BlockPool::allocate(int32_t n) {
  PA_CHECK_ARG(n >= 0, "BlockPool::allocate: n must be >= 0, got {}", n);
  State& s = *state_;
  if (n > num_available()) return std::nullopt;
  std::vector<BlockId> out;
  out.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    BlockId id;
    if (!s.free.empty()) {
      id = s.free.pop_front();
    } else {
      id = s.evictable.pop_front();
      s.uncache(id);
    }
    s.at(id).refcount = 1;
    out.push_back(id);
  }
  s.in_use += n;
  return out;
}

void BlockPool::retain(BlockId block) {
  State& s = *state_;
  s.check_id("retain", block);
  State::Block& b = s.at(block);
  if (b.refcount == 0) {
    PA_CHECK_ARG(s.evictable.contains(block),
                 "BlockPool::retain: block {} is free: only a block in use or a cached block can be retained", block);
    s.evictable.remove(block);
    ++s.in_use;
  }
  ++b.refcount;
}

void BlockPool::free(std::span<const BlockId> blocks) {
  State& s = *state_;
  // Validate everything first, so that a bad call changes nothing.
  std::vector<BlockId> sorted(blocks.begin(), blocks.end());
  for (BlockId id : sorted) s.check_id("free", id);
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    const int32_t refcount = s.at(sorted[i]).refcount;
    PA_CHECK_ARG(refcount > 0, "BlockPool::free: block {} is already free (double free)", sorted[i]);
    PA_CHECK_ARG(static_cast<int64_t>(j - i) <= refcount,
                 "BlockPool::free: block {} is released {} times but its refcount is {} (refcount underflow)",
                 sorted[i], j - i, refcount);
    i = j;
  }
  for (BlockId id : blocks) {
    State::Block& b = s.at(id);
    if (--b.refcount > 0) continue;
    --s.in_use;
    (b.chain != kRootChain ? s.evictable : s.free).push_back(id);
  }
}

std::optional<BlockId> BlockPool::find_cached(const BlockHash& hash, ChainId parent,
                                              std::span<const TokenId> tokens) const {
  auto [first, last] = state_->by_hash.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const State::Block& b = state_->at(it->second);
    if (b.parent == parent && std::ranges::equal(b.tokens, tokens)) return it->second;
  }
  return std::nullopt;
}

std::optional<ChainId> BlockPool::cache(BlockId block, const BlockHash& hash, ChainId parent,
                                        std::span<const TokenId> tokens) {
  State& s = *state_;
  s.check_id("cache", block);
  State::Block& b = s.at(block);
  PA_CHECK_ARG(b.refcount > 0, "BlockPool::cache: block {} is not in use: only a block a sequence holds can be cached",
               block);
  PA_CHECK_ARG(b.chain == kRootChain, "BlockPool::cache: block {} is already cached (chain {})", block, b.chain);
  PA_CHECK_ARG(!tokens.empty(), "BlockPool::cache: block {}: expected the token ids of a full block, got none", block);
  if (parent != kRootChain && !s.by_chain.contains(parent)) return std::nullopt;
  if (auto same = find_cached(hash, parent, tokens)) return s.at(*same).chain;
  b.chain = s.next_chain++;
  b.parent = parent;
  b.hash = hash;
  b.tokens.assign(tokens.begin(), tokens.end());
  s.by_hash.emplace(hash, block);
  s.by_chain.emplace(b.chain, block);
  return b.chain;
}

void BlockPool::check_invariants() const {
  const State& s = *state_;
  int32_t in_use = 0;
  int32_t cached = 0;
  for (BlockId id = 0; id < s.size(); ++id) {
    const State::Block& b = s.at(id);
    const bool is_cached = b.chain != kRootChain;
    PA_CHECK_INVARIANT(b.refcount >= 0, "BlockPool: block {} has refcount {}", id, b.refcount);
    PA_CHECK_INVARIANT(s.free.contains(id) == (b.refcount == 0 && !is_cached),
                       "BlockPool: block {} (refcount {}, cached {}) is{} in the free queue", id, b.refcount, is_cached,
                       s.free.contains(id) ? "" : " not");
    PA_CHECK_INVARIANT(s.evictable.contains(id) == (b.refcount == 0 && is_cached),
                       "BlockPool: block {} (refcount {}, cached {}) is{} in the evictable queue", id, b.refcount, is_cached,
                       s.evictable.contains(id) ? "" : " not");
    if (b.refcount > 0) ++in_use;
    if (!is_cached) continue;
    ++cached;
    const auto chain = s.by_chain.find(b.chain);
    PA_CHECK_INVARIANT(chain != s.by_chain.end() && chain->second == id, "BlockPool: cached block {} is not indexed by chain {}",
                       id, b.chain);
    const auto [first, last] = s.by_hash.equal_range(b.hash);
    PA_CHECK_INVARIANT(std::count_if(first, last, [id](const auto& e) { return e.second == id; }) == 1,
                       "BlockPool: cached block {} is not indexed once by its hash", id);
  }
  PA_CHECK_INVARIANT(in_use == s.in_use, "BlockPool: {} blocks have a refcount but the count says {}", in_use, s.in_use);
  PA_CHECK_INVARIANT(s.free.size() + s.evictable.size() + in_use == s.size(),
                     "BlockPool: free {} + evictable {} + in use {} != num_blocks {}", s.free.size(), s.evictable.size(), in_use,
                     s.size());
  PA_CHECK_INVARIANT(static_cast<size_t>(cached) == s.by_hash.size() && s.by_hash.size() == s.by_chain.size(),
                     "BlockPool: {} cached blocks but {} hash and {} chain index entries", cached, s.by_hash.size(),
                     s.by_chain.size());
}

}  // namespace pagedattn
