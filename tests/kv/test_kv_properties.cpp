// Property tests of the KV-cache manager (DESIGN.md §4). Random sequences of operations (create, prompt with
// prefix lookup, append with and without ids, fork, write into a shared tail, rewind, release, allocate until
// exhausted, build metadata) run against a small KvCache. After EVERY operation:
//   - the pool's counts add up (free + evictable + in use == num_blocks) and KvCacheManager::check_invariants;
//   - each block's refcount equals the number of live sequences whose table holds it (so no block is both free
//     and referenced), the manager knows exactly the live sequences and none of the released ones;
//   - the KV read back through every sequence's block table, on every layer, equals a model kept in plain
//     vectors. Each token's K/V value is a function of its whole token prefix (ids appended without ids get a
//     unique stand-in), written through write_kv at the slots append returned; so a prefix hit that returned
//     another prefix's block, a missing copy-on-write, or a write into a shared block all show as a mismatch.
// Some runs use hashers that collide on purpose: the results must not change.
#include <fmt/format.h>
#include <rapidcheck.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <vector>

#include "pagedattn/attention.h"
#include "pagedattn/kv_cache.h"

using namespace pagedattn;

namespace {

// ---- what is generated ---------------------------------------------------------------------------------------

enum class OpKind : uint8_t { add, add_prompt, append, append_ids, fork, cow_write, rewind, release, exhaust, metadata };

struct Op {
  OpKind kind = OpKind::add;
  uint32_t pick = 0;   // which live sequence (modulo their number)
  uint32_t count = 0;  // how many tokens, scaled by the operation
  uint64_t seed = 0;   // token ids, prompt choice, batch choice
};

std::ostream& operator<<(std::ostream& os, const Op& op) {
  static constexpr const char* kNames[] = {"add",       "add_prompt", "append",  "append_ids", "fork",
                                           "cow_write", "rewind",     "release", "exhaust",    "metadata"};
  return os << kNames[static_cast<int>(op.kind)] << "(pick=" << op.pick << " count=" << op.count << " seed=" << op.seed
            << ")";
}

enum class HashKind : uint8_t { xxh3, constant, last_token };

struct CaseSetup {
  int32_t num_blocks = 8;
  int32_t block_size = 4;
  int32_t num_layers = 2;
  HashKind hash = HashKind::xxh3;
  bool prefix_caching = true;
  int32_t vocab = 3;  // small, so that prompts share prefixes
};

std::ostream& operator<<(std::ostream& os, const CaseSetup& s) {
  return os << "CaseSetup{blocks=" << s.num_blocks << " block_size=" << s.block_size << " layers=" << s.num_layers
            << " hash=" << static_cast<int>(s.hash) << " prefix_caching=" << s.prefix_caching << " vocab=" << s.vocab
            << "}";
}

BlockHash constant_hash(const BlockHash&, std::span<const TokenId>) { return {7, 7}; }
BlockHash last_token_hash(const BlockHash&, std::span<const TokenId> t) { return {static_cast<uint64_t>(t.back()), 0}; }

rc::Gen<Op> gen_op() {
  using K = OpKind;
  return rc::gen::construct<Op>(
      rc::gen::weightedElement<OpKind>({{2, K::add},
                                        {4, K::add_prompt},
                                        {4, K::append},
                                        {6, K::append_ids},
                                        {3, K::fork},
                                        {3, K::cow_write},
                                        {3, K::rewind},
                                        {3, K::release},
                                        {1, K::exhaust},
                                        {1, K::metadata}}),
      rc::gen::arbitrary<uint32_t>(), rc::gen::inRange<uint32_t>(0, 64), rc::gen::arbitrary<uint64_t>());
}

rc::Gen<CaseSetup> gen_setup() {
  return rc::gen::construct<CaseSetup>(
      rc::gen::inRange(1, 25), rc::gen::element(1, 2, 3, 4, 8), rc::gen::inRange(1, 4),
      rc::gen::weightedElement<HashKind>({{4, HashKind::xxh3}, {1, HashKind::constant}, {1, HashKind::last_token}}),
      rc::gen::weightedElement<bool>({{5, true}, {1, false}}), rc::gen::element(2, 3, 50));
}

// ---- the model -----------------------------------------------------------------------------------------------

constexpr int32_t kRow = 4;  // num_kv_heads 1 x head_dim 4
constexpr TokenId kUnknownBase = 1 << 30;  // stand-ins for tokens appended without ids: never a real id
constexpr size_t kMaxSequences = 12;

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct ModelSeq {
  std::vector<TokenId> tokens;   // every position: its id, or a unique stand-in >= kUnknownBase
  std::vector<uint64_t> prefix;  // a digest of tokens[0..p]: what position p's KV depends on
  std::vector<float> kv;         // [position][layer][K, V][kRow]: what the cache must hold
};

struct Stats {
  int64_t cases = 0, ops = 0, prefix_hits = 0, hit_tokens = 0, copies = 0, out_of_blocks = 0, evictions = 0,
          rewinds = 0, releases = 0, forks = 0, metadata = 0, colliding_cases = 0;
};
Stats g_stats;

// ---- the harness ---------------------------------------------------------------------------------------------

class Harness {
 public:
  explicit Harness(const CaseSetup& s)
      : setup_(s),
        cache_(KvCacheConfig{.num_blocks = s.num_blocks,
                             .block_size = s.block_size,
                             .num_layers = s.num_layers,
                             .num_kv_heads = 1,
                             .head_dim = kRow,
                             .dtype = DType::f32,
                             .prefix_caching = s.prefix_caching,
                             .block_hasher = s.hash == HashKind::xxh3       ? xxh3_block_hash
                                             : s.hash == HashKind::constant ? constant_hash
                                                                            : last_token_hash}) {}

  void apply(const Op& op) {
    rng_.seed(op.seed);
    const bool room = model_.size() < kMaxSequences;
    switch (op.kind) {
      case OpKind::add:
        if (room) model_[cache_.add_sequence()];
        break;
      case OpKind::add_prompt:
        if (room) add_prompt();
        break;
      case OpKind::append:
        if (auto seq = pick(op)) append(*seq, op.count % (2 * bs() + 2), false);
        break;
      case OpKind::append_ids:
        if (auto seq = pick(op)) append(*seq, op.count % (2 * bs() + 2), true);
        break;
      case OpKind::fork:
        if (auto seq = pick(op); seq && room) {
          const ModelSeq copy = model_.at(*seq);
          model_[cache_.fork(*seq)] = copy;
          ++g_stats.forks;
        }
        break;
      case OpKind::cow_write:
        if (auto seq = pick_shared_tail(op)) append(*seq, 1 + op.count % 2, op.count % 3 != 0);
        break;
      case OpKind::rewind:
        if (auto seq = pick(op)) rewind(*seq, op.count % (model_.at(*seq).tokens.size() + 1));
        break;
      case OpKind::release:
        if (auto seq = pick(op)) release(*seq);
        break;
      case OpKind::exhaust:
        if (auto seq = pick(op)) {
          for (int32_t i = 0; i <= setup_.num_blocks && append(*seq, bs(), op.count % 2 == 0); ++i) {
          }
        }
        break;
      case OpKind::metadata:
        check_metadata();
        break;
    }
    ++g_stats.ops;
  }

  // Everything the file comment promises, after every operation.
  void check() const {
    const KvCacheManager& m = cache_.manager();
    const BlockPool& pool = m.pool();
    m.check_invariants();
    RC_ASSERT(pool.num_free() + pool.num_evictable() + pool.num_in_use() == pool.num_blocks());
    RC_ASSERT(m.num_sequences() == model_.size());
    for (SeqId gone : released_) RC_ASSERT(!m.contains(gone));

    std::vector<int32_t> references(static_cast<size_t>(pool.num_blocks()), 0);
    for (const auto& [seq, ms] : model_) {
      const SequenceCacheState& s = m.sequence(seq);
      RC_ASSERT(s.num_tokens == std::ssize(ms.tokens));
      RC_ASSERT(std::ssize(s.blocks) == (s.num_tokens + bs() - 1) / bs());
      RC_ASSERT(s.tokens == known_prefix(ms));
      for (BlockId b : s.blocks) ++references[static_cast<size_t>(b)];
      check_content(seq, ms);
    }
    int32_t referenced = 0;
    for (BlockId b = 0; b < pool.num_blocks(); ++b) {
      RC_ASSERT(pool.refcount(b) == references[static_cast<size_t>(b)]);
      referenced += references[static_cast<size_t>(b)] > 0 ? 1 : 0;
    }
    RC_ASSERT(referenced == pool.num_in_use());  // so the free and evictable blocks are exactly the unreferenced ones
  }

 private:
  int64_t bs() const { return setup_.block_size; }

  std::optional<SeqId> pick(const Op& op) const {
    if (model_.empty()) return std::nullopt;
    auto it = model_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(op.pick % model_.size()));
    return it->first;
  }

  // A sequence whose next write goes into a shared or cached partial tail, if any (else any sequence).
  std::optional<SeqId> pick_shared_tail(const Op& op) const {
    const BlockPool& pool = cache_.manager().pool();
    std::vector<SeqId> shared;
    for (const auto& [seq, ms] : model_) {
      const auto table = cache_.manager().block_table(seq);
      if (std::ssize(ms.tokens) % bs() != 0 && (pool.refcount(table.back()) > 1 || pool.is_cached(table.back()))) {
        shared.push_back(seq);
      }
    }
    if (shared.empty()) return pick(op);
    return shared[op.pick % shared.size()];
  }

  TokenId random_token() { return static_cast<TokenId>(rng_() % static_cast<uint64_t>(setup_.vocab)); }

  static std::vector<TokenId> known_prefix(const ModelSeq& ms) {
    const auto end = std::find_if(ms.tokens.begin(), ms.tokens.end(), [](TokenId t) { return t >= kUnknownBase; });
    return {ms.tokens.begin(), end};
  }

  // The model's side of appending `ids` (stand-ins included) to a sequence.
  void extend_model(ModelSeq& ms, const std::vector<TokenId>& ids) const {
    for (TokenId id : ids) {
      const uint64_t digest = mix((ms.prefix.empty() ? 0x5eedull : ms.prefix.back()) ^ mix(static_cast<uint64_t>(id)));
      ms.tokens.push_back(id);
      ms.prefix.push_back(digest);
      for (int32_t l = 0; l < setup_.num_layers; ++l) {
        for (uint64_t which = 0; which < 2; ++which) {
          for (uint64_t i = 0; i < kRow; ++i) {
            // 16-bit integers: exact in f32.
            ms.kv.push_back(static_cast<float>(mix(digest + (static_cast<uint64_t>(l) * 2 + which) * kRow + i) >> 48));
          }
        }
      }
    }
  }

  // Stores positions [from, to) of a sequence at their slots on every layer, through write_kv.
  void write(const ModelSeq& ms, int64_t from, const std::vector<int32_t>& slots) {
    const int64_t n = std::ssize(slots);
    if (n == 0) return;
    Tensor slot_mapping = Tensor::empty({n}, DType::i32);
    std::copy(slots.begin(), slots.end(), slot_mapping.data_as<int32_t>());
    Tensor key = Tensor::empty({n, 1, kRow}, DType::f32);
    Tensor value = Tensor::empty({n, 1, kRow}, DType::f32);
    for (int32_t l = 0; l < setup_.num_layers; ++l) {
      for (int64_t t = 0; t < n; ++t) {
        const float* row = &ms.kv[static_cast<size_t>(((from + t) * setup_.num_layers + l) * 2 * kRow)];
        std::copy(row, row + kRow, key.data_as<float>() + t * kRow);
        std::copy(row + kRow, row + 2 * kRow, value.data_as<float>() + t * kRow);
      }
      write_kv({.key = key, .value = value, .key_cache = cache_.key(l), .value_cache = cache_.value(l),
                .slot_mapping = slot_mapping});
    }
  }

  struct Snapshot {
    std::vector<std::pair<SeqId, SequenceCacheState>> sequences;
    std::vector<int32_t> refcounts;
    std::vector<bool> cached;
    int32_t free = 0, evictable = 0;

    bool operator==(const Snapshot& o) const {
      if (sequences.size() != o.sequences.size() || refcounts != o.refcounts || cached != o.cached ||
          free != o.free || evictable != o.evictable) {
        return false;
      }
      for (size_t i = 0; i < sequences.size(); ++i) {
        const auto& [id, a] = sequences[i];
        const auto& [other_id, b] = o.sequences[i];
        if (id != other_id || a.blocks != b.blocks || a.num_tokens != b.num_tokens || a.tokens != b.tokens ||
            a.block_hashes != b.block_hashes || a.block_chains != b.block_chains) {
          return false;
        }
      }
      return true;
    }
  };

  Snapshot snapshot() const {
    const KvCacheManager& m = cache_.manager();
    Snapshot s;
    for (const auto& [seq, ms] : model_) s.sequences.emplace_back(seq, m.sequence(seq));
    for (BlockId b = 0; b < m.pool().num_blocks(); ++b) {
      s.refcounts.push_back(m.pool().refcount(b));
      s.cached.push_back(m.pool().is_cached(b));
    }
    s.free = m.pool().num_free();
    s.evictable = m.pool().num_evictable();
    return s;
  }

  // Appends n tokens (random ids, or stand-ins) and writes their KV; false when the pool ran out.
  bool append(SeqId seq, int64_t n, bool with_ids) {
    ModelSeq& ms = model_.at(seq);
    std::vector<TokenId> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(with_ids ? random_token() : kUnknownBase + next_unknown_++);
    return append_ids(seq, ms, ids, with_ids);
  }

  bool append_ids(SeqId seq, ModelSeq& ms, const std::vector<TokenId>& ids, bool with_ids) {
    const KvCacheManager& m = cache_.manager();
    const int64_t n = std::ssize(ids);
    const int64_t before_tokens = std::ssize(ms.tokens);
    const std::vector<BlockId> before_table(m.block_table(seq).begin(), m.block_table(seq).end());
    const bool partial_tail = n > 0 && before_tokens % bs() != 0;
    const bool expect_copy = partial_tail && (m.pool().refcount(before_table.back()) > 1 ||
                                              m.pool().is_cached(before_table.back()));
    const int64_t needed = m.blocks_needed(seq, n);
    RC_ASSERT(needed == (before_tokens + n + bs() - 1) / bs() - std::ssize(before_table) + (expect_copy ? 1 : 0));
    const int32_t free_before = m.pool().num_free();
    const int32_t available_before = m.pool().num_available();
    const Snapshot before = snapshot();

    const std::optional<std::vector<int32_t>> slots = with_ids ? cache_.append(seq, ids) : cache_.append(seq, n);
    if (!slots) {
      RC_ASSERT(needed > available_before);
      RC_ASSERT(snapshot() == before);  // out of blocks changed nothing
      ++g_stats.out_of_blocks;
      return false;
    }
    RC_ASSERT(needed <= available_before);
    if (needed > free_before) g_stats.evictions += needed - free_before;
    const auto table = m.block_table(seq);
    for (size_t i = 0; i + 1 < before_table.size(); ++i) RC_ASSERT(table[i] == before_table[i]);
    if (!before_table.empty()) RC_ASSERT((table[before_table.size() - 1] != before_table.back()) == expect_copy);
    g_stats.copies += expect_copy ? 1 : 0;

    extend_model(ms, ids);
    RC_ASSERT(std::ssize(*slots) == n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t p = before_tokens + i;
      RC_ASSERT((*slots)[static_cast<size_t>(i)] == table[static_cast<size_t>(p / bs())] * bs() + p % bs());
    }
    write(ms, before_tokens, *slots);
    return true;
  }

  // A prompt made to hit: a prefix of an earlier sequence's tokens plus a random tail, or fresh tokens.
  void add_prompt() {
    std::vector<TokenId> prompt;
    if (!history_.empty() && rng_() % 3 != 0) {
      const std::vector<TokenId>& earlier = history_[rng_() % history_.size()];
      prompt.assign(earlier.begin(), earlier.begin() + static_cast<std::ptrdiff_t>(rng_() % (earlier.size() + 1)));
    }
    for (uint64_t extra = rng_() % static_cast<uint64_t>(2 * bs() + 1); extra > 0; --extra) prompt.push_back(random_token());
    if (prompt.empty()) prompt.push_back(random_token());

    const SeqId seq = cache_.add_sequence();
    ModelSeq& ms = model_[seq];
    const int64_t cached = cache_.attach_cached_prefix(seq, prompt);
    RC_ASSERT(cached >= 0 && cached <= std::ssize(prompt) - 1);
    if (!setup_.prefix_caching) RC_ASSERT(cached == 0);
    RC_ASSERT(cached % bs() == 0 || cached == std::ssize(prompt) - 1);
    if (cached > 0) {
      ++g_stats.prefix_hits;
      g_stats.hit_tokens += cached;
    }
    extend_model(ms, {prompt.begin(), prompt.begin() + cached});  // its KV is already in the attached blocks
    append_ids(seq, ms, {prompt.begin() + cached, prompt.end()}, true);
    remember(prompt);
  }

  void remember(const std::vector<TokenId>& tokens) {
    if (tokens.empty()) return;
    if (history_.size() < 32) {
      history_.push_back(tokens);
    } else {
      history_[rng_() % history_.size()] = tokens;
    }
  }

  void rewind(SeqId seq, int64_t n) {
    ModelSeq& ms = model_.at(seq);
    cache_.rewind(seq, n);
    const size_t keep = ms.tokens.size() - static_cast<size_t>(n);
    ms.tokens.resize(keep);
    ms.prefix.resize(keep);
    ms.kv.resize(keep * static_cast<size_t>(setup_.num_layers) * 2 * kRow);
    ++g_stats.rewinds;
  }

  void release(SeqId seq) {
    remember(known_prefix(model_.at(seq)));
    cache_.release(seq);
    model_.erase(seq);
    released_.push_back(seq);
    ++g_stats.releases;
  }

  void check_content(SeqId seq, const ModelSeq& ms) const {
    const auto table = cache_.manager().block_table(seq);
    for (int64_t p = 0; p < std::ssize(ms.tokens); ++p) {
      const int64_t slot = table[static_cast<size_t>(p / bs())] * bs() + p % bs();
      for (int32_t l = 0; l < setup_.num_layers; ++l) {
        const float* expected = &ms.kv[static_cast<size_t>((p * setup_.num_layers + l) * 2 * kRow)];
        const float* key = cache_.key(l).data_as<const float>() + slot * kRow;
        const float* value = cache_.value(l).data_as<const float>() + slot * kRow;
        if (!std::equal(key, key + kRow, expected) || !std::equal(value, value + kRow, expected + kRow)) {
          RC_FAIL(fmt::format("sequence {} position {} layer {} (slot {}): the cache holds K {} V {}, expected K {} V {}",
                              seq, p, l, slot, fmt::join(key, key + kRow, ","), fmt::join(value, value + kRow, ","),
                              fmt::join(expected, expected + kRow, ","),
                              fmt::join(expected + kRow, expected + 2 * kRow, ",")));
        }
      }
    }
  }

  // A random batch over the live sequences: both builders give the contract's arrays, which validation accepts.
  void check_metadata() {
    const KvCacheManager& m = cache_.manager();
    std::vector<ScheduledSeq> batch;
    for (const auto& [seq, ms] : model_) {
      if (rng_() % 2 == 0) batch.push_back({seq, static_cast<int64_t>(rng_() % (ms.tokens.size() + 1))});
    }
    const AttentionMetadata md = cache_.metadata(batch);
    AttentionMetadataBuffers buffers(static_cast<int32_t>(kMaxSequences),
                                     static_cast<int64_t>(kMaxSequences) * setup_.num_blocks * bs(), setup_.num_blocks);
    const AttentionMetadataView fixed = buffers.build(m, batch);
    const int64_t width = md.block_tables.size(1);
    const auto* tables = md.block_tables.data_as<const int32_t>();
    const auto* fixed_tables = fixed.block_tables.data_as<const int32_t>();
    int64_t row = 0;
    RC_ASSERT(md.query_start.data_as<const int32_t>()[0] == 0);
    for (size_t b = 0; b < batch.size(); ++b) {
      const auto table = m.block_table(batch[b].seq);
      for (int64_t i = 0; i < setup_.num_blocks; ++i) {
        const int32_t expected = i < std::ssize(table) ? table[static_cast<size_t>(i)] : -1;
        if (i < width) RC_ASSERT(tables[static_cast<int64_t>(b) * width + i] == expected);
        RC_ASSERT(fixed_tables[static_cast<int64_t>(b) * setup_.num_blocks + i] == expected);
      }
      const int64_t ctx = std::ssize(model_.at(batch[b].seq).tokens);
      RC_ASSERT(md.context_lens.data_as<const int32_t>()[b] == ctx);
      RC_ASSERT(fixed.context_lens.data_as<const int32_t>()[b] == ctx);
      for (int64_t p = ctx - batch[b].num_new_tokens; p < ctx; ++p, ++row) {
        const int32_t slot = static_cast<int32_t>(table[static_cast<size_t>(p / bs())] * bs() + p % bs());
        RC_ASSERT(md.slot_mapping.data_as<const int32_t>()[row] == slot);
        RC_ASSERT(fixed.slot_mapping.data_as<const int32_t>()[row] == slot);
      }
      RC_ASSERT(md.query_start.data_as<const int32_t>()[b + 1] == row);
      RC_ASSERT(fixed.query_start.data_as<const int32_t>()[b + 1] == row);
    }
    const Tensor query = Tensor::zeros({row, 1, kRow}, DType::f32);
    const Tensor out = Tensor::zeros({row, 1, kRow}, DType::f32);
    validate_paged_attention({.out = out, .query = query, .key_cache = cache_.key(0), .value_cache = cache_.value(0),
                              .block_tables = md.block_tables, .context_lens = md.context_lens,
                              .query_start = md.query_start.view()});
    validate_write_kv({.key = query, .value = query, .key_cache = cache_.key(0), .value_cache = cache_.value(0),
                       .slot_mapping = fixed.slot_mapping});
    ++g_stats.metadata;
  }

  CaseSetup setup_;
  KvCache cache_;
  std::map<SeqId, ModelSeq> model_;  // the live sequences (ordered: picks are reproducible)
  std::vector<std::vector<TokenId>> history_;
  std::vector<SeqId> released_;
  int32_t next_unknown_ = 0;
  std::mt19937_64 rng_;
};

void run_case(const CaseSetup& setup, const std::vector<Op>& ops) {
  Harness h(setup);
  h.check();
  for (const Op& op : ops) {
    h.apply(op);
    h.check();
  }
  ++g_stats.cases;
  if (setup.hash != HashKind::xxh3) ++g_stats.colliding_cases;
}

// Runs `property` for `cases` random cases (seed from RC_PARAMS, so a failure's seed reproduces it).
template <class Property>
void check_cases(int cases, int max_size, bool shrink, Property property) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = cases;
  params.maxSize = max_size;
  params.disableShrinking = params.disableShrinking || !shrink;
  const rc::detail::TestResult result = rc::detail::checkTestable(property, metadata, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    FAIL() << message.str();
  }
}

// The property ran for real: every operation's interesting branch was taken.
void expect_coverage(const Stats& s, int64_t min_cases) {
  EXPECT_GE(s.cases, min_cases);
  EXPECT_GT(s.prefix_hits, 0);
  EXPECT_GT(s.copies, 0);
  EXPECT_GT(s.out_of_blocks, 0);
  EXPECT_GT(s.evictions, 0);
  EXPECT_GT(s.rewinds, 0);
  EXPECT_GT(s.releases, 0);
  EXPECT_GT(s.forks, 0);
  EXPECT_GT(s.metadata, 0);
  EXPECT_GT(s.colliding_cases, 0);
}

void report(const char* name, const Stats& s, double seconds) {
  std::cout << fmt::format(
                   "{}: {} cases, {} operations in {:.2f} s; prefix hits {} ({} tokens), copies-on-write {}, "
                   "out-of-blocks {}, evictions {}, rewinds {}, releases {}, forks {}, metadata builds {}, cases with "
                   "colliding hashes {}",
                   name, s.cases, s.ops, seconds, s.prefix_hits, s.hit_tokens, s.copies, s.out_of_blocks,
                   s.evictions, s.rewinds, s.releases, s.forks, s.metadata, s.colliding_cases)
            << std::endl;
}

template <class Property>
void run_property(const char* name, int cases, int max_size, bool shrink, Property property) {
  g_stats = {};
  const auto start = std::chrono::steady_clock::now();
  check_cases(cases, max_size, shrink, property);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Shrinking reruns cases: only a passing run's statistics mean anything.
  if (!::testing::Test::HasFailure()) {
    report(name, g_stats, seconds);
    expect_coverage(g_stats, cases);
  }
}

}  // namespace

// 10,000 random operation sequences; the n-th case has up to 400 * n / 10,000 operations (about 100 on average).
TEST(KvCacheProperties, InvariantsAndContentHoldAfterEveryOperation) {
  run_property("short sequences", 10000, /*max_size=*/400, /*shrink=*/true, [] {
    const CaseSetup setup = *gen_setup();
    const std::vector<Op> ops = *rc::gen::container<std::vector<Op>>(gen_op());
    run_case(setup, ops);
  });
}

// Fewer, long sequences: thousands of operations each, so that state builds up (deep chains, many evictions).
// Not shrunk (shrinking thousands of operations takes minutes): a failure here names its seed, and the short
// property above, which does shrink, finds the same bugs.
TEST(KvCacheProperties, InvariantsAndContentHoldOverThousandsOfOperations) {
  run_property("long sequences", 50, /*max_size=*/100, /*shrink=*/false, [] {
    const CaseSetup setup = *gen_setup();
    const std::vector<Op> ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange<size_t>(2000, 5000), gen_op());
    run_case(setup, ops);
  });
}
