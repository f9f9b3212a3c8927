// The engine: serves many generation requests at once over one paged KV cache (continuous batching).
//
// Every step() runs ONE batched forward over the requests the scheduler picked: sequences decoding one
// token, chunks of prompts being prefilled (chunked prefill under a per-step token budget), and new requests
// admitted while others run. A request finishes on its own, at an end-of-generation token, a stop string or
// its token limit, and its blocks go back to the pool at once. When the pool runs out, the most recently
// admitted request is preempted: its blocks are freed and it is recomputed later (prefix caching makes the
// recompute of blocks still cached free).
//
//   Engine engine(model, tokenizer, EngineConfig{});
//   RequestId id = engine.add_request(tokenizer.encode("Hello"), {.max_tokens = 32});
//   while (engine.has_unfinished())
//     for (const RequestOutput& out : engine.step()) std::cout << out.text;
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pagedattn/sampler.h"
#include "pagedattn/tensor.h"

namespace pagedattn {

class LlamaModel;
class Tokenizer;

using RequestId = int64_t;

struct GenerationParams {
  SamplingParams sampling;        // greedy by default
  int32_t max_tokens = 256;       // new tokens at most (> 0)
  bool ignore_eos = false;        // go on past end-of-generation tokens (benchmarks)
  std::vector<std::string> stop;  // the text ends before the first of these that appears (non-empty strings)
};

enum class FinishReason {
  none,       // still running
  stop,       // an end-of-generation token or a stop string
  length,     // max_tokens, or the model's / cache's length limit
  cancelled,  // cancel()
};
const char* finish_reason_name(FinishReason reason);

// What one step produced for one request.
struct RequestOutput {
  RequestId id = 0;
  int32_t token = -1;       // the token sampled this step
  std::string text;         // text that became final this step (complete UTF-8; may be empty)
  FinishReason finish = FinishReason::none;
  int64_t num_generated = 0;  // tokens generated so far, this one included
};

struct EngineConfig {
  int32_t block_size = 16;
  size_t kv_memory_bytes = size_t{512} << 20;  // the KV cache's size; the number of blocks follows from it
  DType kv_dtype = DType::f32;                  // f32, f16 or bf16
  int32_t max_num_seqs = 64;                    // sequences in one step
  int64_t max_num_batched_tokens = 512;         // new tokens in one step: the chunked-prefill budget
  bool prefix_caching = true;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;     // prompt tokens of the requests added
  int64_t cached_tokens = 0;     // prompt tokens found in the prefix cache instead of computed
  int64_t prefill_tokens = 0;    // tokens computed by prefill chunks (recomputes after preemption included)
  int64_t generated_tokens = 0;  // tokens sampled
  int64_t preemptions = 0;
  double prefill_seconds = 0;    // time of the steps that held a prefill chunk
  double decode_seconds = 0;     // time of the steps that only decoded
};

class Engine {
 public:
  // Sizes the KV cache from config.kv_memory_bytes. The model and tokenizer must outlive the engine.
  // Throws pagedattn::Error for a bad configuration.
  Engine(const LlamaModel& model, const Tokenizer& tokenizer, const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. Throws pagedattn::Error (nothing queued) for an empty prompt, a token id outside the
  // vocabulary, a prompt longer than max_model_len(), or bad params.
  RequestId add_request(std::vector<int32_t> prompt, const GenerationParams& params);

  // Ends a request now and frees its blocks; unknown or finished ids are ignored (it may have just finished).
  void cancel(RequestId id);

  // Schedules and runs one forward step; returns one output per request that sampled a token.
  std::vector<RequestOutput> step();

  bool has_unfinished() const;
  size_t num_waiting() const;
  size_t num_running() const;
  // The longest sequence (prompt + generated) a request may reach: min(the model's context, the cache).
  int64_t max_model_len() const;
  int32_t num_kv_blocks() const;
  int32_t num_available_blocks() const;  // free or cached-evictable: what new tokens can take
  const EngineStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagedattn
