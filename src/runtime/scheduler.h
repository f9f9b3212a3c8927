// The scheduler: which requests take part in the next step and with how many new tokens (nano-vllm's
// waiting/running queues, vLLM v1's single token budget shared by prefill and decode).
//
// Each step: first the running requests, oldest first, each with all its uncomputed tokens (one when
// decoding; the rest of its prompt, cut to the budget, when prefilling); then waiting requests, first come
// first served, while the token budget, max_num_seqs and the pool allow. When the pool cannot give a
// running request its blocks, the newest running request is preempted (recompute: its blocks are freed, it
// goes back to the front of the waiting queue, and no new request is admitted in that step).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "pagedattn/kv_cache.h"
#include "runtime/request.h"

namespace pagedattn {

struct SchedulerConfig {
  int32_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 512;
};

struct ScheduledChunk {
  Request* request = nullptr;
  int64_t num_new_tokens = 0;  // tokens[num_computed, num_computed + num_new_tokens) run this step
};

class Scheduler {
 public:
  Scheduler(KvCache& cache, const SchedulerConfig& config);

  void add(Request* request);     // to the back of the waiting queue
  void finish(Request* request);  // out of its queue, blocks released, status finished

  // Picks the step's chunks and appends their tokens to the cache (slots and copy-on-write done), so the
  // caller only builds the metadata and runs the forward. Empty when nothing can run.
  std::vector<ScheduledChunk> schedule();

  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  int64_t num_preemptions() const { return preemptions_; }
  int64_t num_cached_tokens() const { return cached_tokens_; }  // prompt tokens served by the prefix cache

 private:
  bool append(Request& r, int64_t n);  // false (nothing changed) when the pool is short
  void preempt_newest();

  KvCache& cache_;
  SchedulerConfig config_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // in admission order: the back is preempted first
  int64_t preemptions_ = 0;
  int64_t cached_tokens_ = 0;
};

}  // namespace pagedattn
