#include "runtime/scheduler.h"

#include <algorithm>

#include "core/check.h"

namespace pagedattn {

Scheduler::Scheduler(KvCache& cache, const SchedulerConfig& config) : cache_(cache), config_(config) {
  PA_CHECK_ARG(config.max_num_seqs > 0, "scheduler: max_num_seqs = {}: expected > 0", config.max_num_seqs);
  PA_CHECK_ARG(config.max_num_batched_tokens > 0, "scheduler: max_num_batched_tokens = {}: expected > 0",
               config.max_num_batched_tokens);
}

void Scheduler::add(Request* request) {
  request->status = RequestStatus::waiting;
  waiting_.push_back(request);
}

void Scheduler::finish(Request* request) {
  std::erase(running_, request);
  std::erase(waiting_, request);
  if (request->seq) cache_.release(*request->seq);
  request->seq.reset();
  request->status = RequestStatus::finished;
}

bool Scheduler::append(Request& r, int64_t n) {
  const std::span<const TokenId> tokens(r.tokens.data() + r.num_computed, static_cast<size_t>(n));
  return cache_.append(*r.seq, tokens).has_value();
}

void Scheduler::preempt_newest() {
  Request* victim = running_.back();
  running_.pop_back();
  cache_.release(*victim->seq);
  victim->seq.reset();
  victim->num_computed = 0;
  victim->status = RequestStatus::waiting;
  waiting_.push_front(victim);
  ++preemptions_;
}

std::vector<ScheduledChunk> Scheduler::schedule() {
  std::vector<ScheduledChunk> chunks;
  int64_t budget = config_.max_num_batched_tokens;
  bool preempted = false;

  // Running requests first, oldest first. A victim is always behind request i, so no chunk already taken
  // this step loses its blocks.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Request& r = *running_[i];
    const int64_t n = std::min(r.num_uncomputed(), budget);
    bool fits = append(r, n);
    while (!fits && running_.back() != &r) {
      preempt_newest();
      preempted = true;
      fits = append(r, n);
    }
    if (!fits) {
      // r itself is the newest: it waits, unless it is alone, and then it can never run.
      PA_CHECK(running_.size() > 1, ErrorKind::runtime,
               "scheduler: request {} needs {} tokens of a {}-block pool that holds nothing else", r.id,
               r.num_tokens(), cache_.manager().pool().num_blocks());
      preempt_newest();
      preempted = true;
      break;
    }
    chunks.push_back({&r, n});
    budget -= n;
  }

  // Then new requests, first come first served, unless this step had to preempt.
  while (!preempted && !waiting_.empty() && budget > 0 &&
         running_.size() < static_cast<size_t>(config_.max_num_seqs)) {
    Request& r = *waiting_.front();
    r.seq = cache_.add_sequence();
    const int64_t cached = cache_.attach_cached_prefix(*r.seq, r.tokens);
    r.num_computed = cached;
    const int64_t n = std::min(r.num_uncomputed(), budget);
    if (!append(r, n)) {
      cache_.release(*r.seq);
      r.seq.reset();
      r.num_computed = 0;
      break;
    }
    cached_tokens_ += cached;
    waiting_.pop_front();
    r.status = RequestStatus::running;
    running_.push_back(&r);
    chunks.push_back({&r, n});
    budget -= n;
  }
  return chunks;
}

}  // namespace pagedattn
