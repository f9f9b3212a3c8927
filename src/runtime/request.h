// One generation request as the engine tracks it: its tokens (prompt, then generated), how many of them
// have their K/V in the cache, and its place in the cache (a sequence while it is running).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "pagedattn/engine.h"
#include "pagedattn/kv_cache_manager.h"
#include "runtime/text_stream.h"

namespace pagedattn {

enum class RequestStatus { waiting, running, finished };

struct Request {
  Request(RequestId id_, std::vector<int32_t> prompt, const GenerationParams& params_)
      : id(id_),
        tokens(std::move(prompt)),
        prompt_len(static_cast<int64_t>(tokens.size())),
        params(params_),
        sampler(params_.sampling),
        text(params_.stop) {}

  RequestId id;
  std::vector<int32_t> tokens;  // prompt then generated; the last one has no K/V yet while decoding
  int64_t prompt_len;
  int64_t num_computed = 0;     // leading tokens whose K/V is in the cache (back to 0 when preempted)
  std::optional<SeqId> seq;     // its cache sequence, while it holds blocks
  RequestStatus status = RequestStatus::waiting;
  GenerationParams params;
  Sampler sampler;
  TextStream text;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_generated() const { return num_tokens() - prompt_len; }
  int64_t num_uncomputed() const { return num_tokens() - num_computed; }
};

}  // namespace pagedattn
