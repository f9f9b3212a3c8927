// The engine's step: schedule, build the step's inputs and metadata, one forward over every scheduled
// token, then sample for each request whose uncomputed tokens are all done and apply its stop rules.
#include "pagedattn/engine.h"

#include <chrono>
#include <unordered_map>

#include "core/check.h"
#include "pagedattn/kv_cache.h"
#include "pagedattn/model.h"
#include "pagedattn/tokenizer.h"
#include "runtime/request.h"
#include "runtime/scheduler.h"

namespace pagedattn {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::none:
      return "none";
    case FinishReason::stop:
      return "stop";
    case FinishReason::length:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

KvCacheConfig cache_config(const LlamaConfig& model, const EngineConfig& config) {
  KvCacheConfig c;
  c.block_size = config.block_size;
  c.num_layers = static_cast<int32_t>(model.num_layers);
  c.num_kv_heads = static_cast<int32_t>(model.num_kv_heads);
  c.head_dim = static_cast<int32_t>(model.head_dim);
  c.dtype = config.kv_dtype;
  c.prefix_caching = config.prefix_caching;
  PA_CHECK_ARG(config.block_size > 0, "engine: block_size = {}: expected > 0", config.block_size);
  c.num_blocks = KvCache::num_blocks_for_budget(c, config.kv_memory_bytes);
  return c;
}

}  // namespace

struct Engine::Impl {
  Impl(const LlamaModel& model_, const Tokenizer& tokenizer_, const EngineConfig& config)
      : model(model_),
        tokenizer(tokenizer_),
        cache(cache_config(model_.config(), config)),
        scheduler(cache, {.max_num_seqs = config.max_num_seqs,
                          .max_num_batched_tokens = config.max_num_batched_tokens}) {
    for (int32_t l = 0; l < cache.config().num_layers; ++l) layers.push_back({cache.key(l), cache.value(l)});
    const int64_t capacity = int64_t{cache.config().num_blocks} * cache.config().block_size;
    const int64_t trained = model.config().context_length;
    max_model_len = trained > 0 ? std::min(trained, capacity) : capacity;
  }

  std::vector<RequestOutput> step();
  // Appends the sampled token to r and decides whether r is done; returns its output.
  RequestOutput accept(Request& r, int32_t token);

  const LlamaModel& model;
  const Tokenizer& tokenizer;
  KvCache cache;
  Scheduler scheduler;
  std::vector<LayerKvCache> layers;
  int64_t max_model_len = 0;
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests;  // unfinished ones
  RequestId next_id = 0;
  EngineStats stats;
};

std::vector<RequestOutput> Engine::Impl::step() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<ScheduledChunk> chunks = scheduler.schedule();
  if (chunks.empty()) return {};

  std::vector<int32_t> tokens, positions, logit_rows;
  std::vector<ScheduledSeq> batch;
  std::vector<Request*> sampled;  // requests whose logits row is logit_rows[i]
  bool has_prefill = false;
  for (const ScheduledChunk& c : chunks) {
    Request& r = *c.request;
    for (int64_t p = r.num_computed; p < r.num_computed + c.num_new_tokens; ++p) {
      tokens.push_back(r.tokens[static_cast<size_t>(p)]);
      positions.push_back(static_cast<int32_t>(p));
    }
    batch.push_back({*r.seq, c.num_new_tokens});
    // A decode chunk is the one token sampled last step; anything else computes prompt (or recompute) tokens.
    const bool decode = c.num_new_tokens == 1 && r.num_generated() > 0 && r.num_computed == r.num_tokens() - 1;
    if (!decode) {
      has_prefill = true;
      stats.prefill_tokens += c.num_new_tokens;
    }
    if (r.num_computed + c.num_new_tokens == r.num_tokens()) {
      logit_rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
      sampled.push_back(&r);
    }
  }

  const AttentionMetadata md = cache.metadata(batch);
  ForwardArgs args;
  args.tokens = tokens;
  args.positions = positions;
  args.slot_mapping = md.slot_mapping;
  args.block_tables = md.block_tables;
  args.context_lens = md.context_lens;
  args.query_start = md.query_start.view();
  args.kv_cache = layers;
  args.logit_rows = logit_rows;
  const Tensor logits = model.forward(args);
  for (const ScheduledChunk& c : chunks) c.request->num_computed += c.num_new_tokens;

  std::vector<RequestOutput> outputs;
  const int64_t vocab = model.config().vocab_size;
  for (size_t i = 0; i < sampled.size(); ++i) {
    Request& r = *sampled[i];
    const std::span<const float> row(logits.data_as<const float>() + static_cast<int64_t>(i) * vocab,
                                     static_cast<size_t>(vocab));
    outputs.push_back(accept(r, r.sampler.sample(row)));
  }
  ++stats.steps;
  stats.preemptions = scheduler.num_preemptions();
  stats.cached_tokens = scheduler.num_cached_tokens();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (has_prefill ? stats.prefill_seconds : stats.decode_seconds) += seconds;
  return outputs;
}

RequestOutput Engine::Impl::accept(Request& r, int32_t token) {
  r.tokens.push_back(token);
  ++stats.generated_tokens;
  RequestOutput out{.id = r.id, .token = token, .num_generated = r.num_generated()};
  if (!r.params.ignore_eos && tokenizer.is_end_of_generation(token)) {
    out.finish = FinishReason::stop;
  } else {
    out.text = r.text.push(tokenizer.token_to_piece(token, /*render_special=*/false));
    if (r.text.stopped()) {
      out.finish = FinishReason::stop;
    } else if (r.num_generated() >= r.params.max_tokens || r.num_tokens() >= max_model_len) {
      out.finish = FinishReason::length;
    }
  }
  if (out.finish != FinishReason::none) {
    out.text += r.text.flush();
    scheduler.finish(&r);
    requests.erase(r.id);  // r is gone from here on
  }
  return out;
}

Engine::Engine(const LlamaModel& model, const Tokenizer& tokenizer, const EngineConfig& config)
    : impl_(std::make_unique<Impl>(model, tokenizer, config)) {}
Engine::~Engine() = default;

RequestId Engine::add_request(std::vector<int32_t> prompt, const GenerationParams& params) {
  Impl& e = *impl_;
  PA_CHECK_ARG(!prompt.empty(), "add_request: the prompt is empty: expected at least one token");
  const int64_t vocab = e.model.config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i) {
    PA_CHECK_ARG(prompt[i] >= 0 && prompt[i] < vocab, "add_request: prompt[{}] = {}: expected a token id in [0, {})",
                 i, prompt[i], vocab);
  }
  PA_CHECK_ARG(static_cast<int64_t>(prompt.size()) < e.max_model_len,
               "add_request: the prompt has {} tokens: expected fewer than max_model_len = {}", prompt.size(),
               e.max_model_len);
  PA_CHECK_ARG(params.max_tokens > 0, "add_request: max_tokens = {}: expected > 0", params.max_tokens);
  const RequestId id = e.next_id++;
  auto request = std::make_unique<Request>(id, std::move(prompt), params);  // checks sampling and stop
  e.stats.prompt_tokens += request->prompt_len;
  e.scheduler.add(request.get());
  e.requests.emplace(id, std::move(request));
  return id;
}

void Engine::cancel(RequestId id) {
  const auto it = impl_->requests.find(id);
  if (it == impl_->requests.end()) return;
  impl_->scheduler.finish(it->second.get());
  impl_->requests.erase(it);
}

std::vector<RequestOutput> Engine::step() { return impl_->step(); }
bool Engine::has_unfinished() const { return !impl_->requests.empty(); }
size_t Engine::num_waiting() const { return impl_->scheduler.num_waiting(); }
size_t Engine::num_running() const { return impl_->scheduler.num_running(); }
int64_t Engine::max_model_len() const { return impl_->max_model_len; }
int32_t Engine::num_kv_blocks() const { return impl_->cache.config().num_blocks; }
int32_t Engine::num_available_blocks() const { return impl_->cache.manager().num_available_blocks(); }
const EngineStats& Engine::stats() const { return impl_->stats; }

}  // namespace pagedattn
