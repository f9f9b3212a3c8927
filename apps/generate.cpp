// `pagedattn generate`: text generation through the engine. Several prompts run together (one batched
// forward per step over every live sequence, one block pool); a single prompt streams its text as it comes.
// Progress and the timing summary go to stderr, the generated text to stdout.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "pagedattn/engine.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"
#include "pagedattn/model.h"
#include "pagedattn/tokenizer.h"

namespace pagedattn::cli {
namespace {

struct GenerateOptions {
  std::vector<std::string> prompts;
  std::string prompts_file;
  std::string model;
  int32_t max_tokens = 256;
  float temperature = 0.7f;
  float top_p = 0.9f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  bool chat = false;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  int64_t kv_memory_mib = 512;
  std::string kv_dtype = "float32";
  int32_t block_size = 16;
  int32_t max_num_seqs = 64;
  int64_t max_batched_tokens = 512;
  bool no_prefix_caching = false;
  std::string stats_json;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string default_model() {
  const char* env = std::getenv("PAGEDATTN_MODEL");
  return env != nullptr && *env != '\0' ? env : PAGEDATTN_DEFAULT_MODEL;
}

std::vector<std::string> read_prompts(const GenerateOptions& o) {
  std::vector<std::string> prompts = o.prompts;
  if (!o.prompts_file.empty()) {
    std::ifstream in(o.prompts_file);
    if (!in) throw Error(ErrorKind::invalid_argument, "--prompts-file " + o.prompts_file + ": cannot be read");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(line);
  }
  if (prompts.empty())
    throw Error(ErrorKind::invalid_argument, "no prompt: expected a PROMPT argument or a non-empty --prompts-file");
  return prompts;
}

DType parse_kv_dtype(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "float16") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  throw Error(ErrorKind::invalid_argument, "--kv-dtype " + name + ": expected float32, float16 or bfloat16");
}

void write_stats_json(const std::string& path, const EngineStats& s, size_t num_prompts, double load_seconds,
                      double run_seconds) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw Error(ErrorKind::runtime, "--stats-json " + path + ": cannot be written");
  std::fprintf(f,
               "{\"prompts\": %zu, \"prompt_tokens\": %lld, \"cached_tokens\": %lld, \"prefill_tokens\": %lld, "
               "\"generated_tokens\": %lld, \"steps\": %lld, \"preemptions\": %lld, \"load_seconds\": %.6f, "
               "\"run_seconds\": %.6f, \"prefill_seconds\": %.6f, \"decode_seconds\": %.6f}\n",
               num_prompts, static_cast<long long>(s.prompt_tokens), static_cast<long long>(s.cached_tokens),
               static_cast<long long>(s.prefill_tokens), static_cast<long long>(s.generated_tokens),
               static_cast<long long>(s.steps), static_cast<long long>(s.preemptions), load_seconds, run_seconds,
               s.prefill_seconds, s.decode_seconds);
  std::fclose(f);
}

int run_generate(const GenerateOptions& o) {
  const std::vector<std::string> prompts = read_prompts(o);
  const std::string path = o.model.empty() ? default_model() : o.model;
  const auto load_start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "pagedattn: loading %s\n", path.c_str());
  const GgufFile file = GgufFile::open(path);
  const LlamaModel model = LlamaModel::load(file);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const LlamaConfig& c = model.config();

  EngineConfig config;
  config.block_size = o.block_size;
  config.kv_memory_bytes = static_cast<size_t>(o.kv_memory_mib) << 20;
  config.kv_dtype = parse_kv_dtype(o.kv_dtype);
  config.max_num_seqs = o.max_num_seqs;
  config.max_num_batched_tokens = o.max_batched_tokens;
  config.prefix_caching = !o.no_prefix_caching;
  Engine engine(model, tokenizer, config);
  const double load_seconds = seconds_since(load_start);
  std::fprintf(stderr,
               "pagedattn: %lld layers, %lld/%lld heads, head dim %lld, vocab %lld; KV cache %d blocks of %d tokens "
               "(%s); loaded in %.2f s\n",
               static_cast<long long>(c.num_layers), static_cast<long long>(c.num_q_heads),
               static_cast<long long>(c.num_kv_heads), static_cast<long long>(c.head_dim),
               static_cast<long long>(c.vocab_size), engine.num_kv_blocks(), o.block_size, o.kv_dtype.c_str(),
               load_seconds);

  GenerationParams params;
  params.sampling = {.temperature = o.temperature, .top_k = o.top_k, .top_p = o.top_p, .seed = o.seed};
  params.max_tokens = o.max_tokens;
  params.ignore_eos = o.ignore_eos;
  params.stop = o.stop;
  std::map<RequestId, size_t> index_of;  // request -> prompt number
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string text = prompts[i];
    if (o.chat) text = tokenizer.apply_chat_template(std::vector<ChatMessage>{{"user", text}}, true);
    params.sampling.seed = o.seed + i;  // each prompt its own stream of draws, reproducible
    index_of[engine.add_request(tokenizer.encode(text), params)] = i;
  }

  // One prompt streams; several print each completion when it finishes.
  const bool stream = prompts.size() == 1;
  std::vector<std::string> texts(prompts.size());
  const auto run_start = std::chrono::steady_clock::now();
  while (engine.has_unfinished()) {
    for (const RequestOutput& out : engine.step()) {
      const size_t i = index_of.at(out.id);
      if (stream) {
        std::fwrite(out.text.data(), 1, out.text.size(), stdout);
        std::fflush(stdout);
      } else {
        texts[i] += out.text;
      }
      if (out.finish == FinishReason::none) continue;
      if (stream) {
        std::fputc('\n', stdout);
        std::fflush(stdout);
      } else {
        std::printf("--- [%zu] %s (%lld tokens, %s)\n%s\n", i, prompts[i].c_str(),
                    static_cast<long long>(out.num_generated), finish_reason_name(out.finish), texts[i].c_str());
        std::fflush(stdout);
      }
    }
  }
  const double run_seconds = seconds_since(run_start);

  const EngineStats& s = engine.stats();
  std::fprintf(stderr,
               "pagedattn: %zu prompt(s): prompt %lld tokens (%lld from the prefix cache) in %.3f s (%.1f tok/s); "
               "generated %lld tokens in %.3f s (%.1f tok/s); total %.3f s, %.1f generated tok/s, %lld steps, "
               "%lld preemptions\n",
               prompts.size(), static_cast<long long>(s.prompt_tokens), static_cast<long long>(s.cached_tokens),
               s.prefill_seconds, static_cast<double>(s.prefill_tokens) / std::max(s.prefill_seconds, 1e-9),
               static_cast<long long>(s.generated_tokens), s.decode_seconds,
               static_cast<double>(s.generated_tokens) / std::max(s.decode_seconds, 1e-9), run_seconds,
               static_cast<double>(s.generated_tokens) / std::max(run_seconds, 1e-9),
               static_cast<long long>(s.steps), static_cast<long long>(s.preemptions));
  if (!o.stats_json.empty()) write_stats_json(o.stats_json, s, prompts.size(), load_seconds, run_seconds);
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  const CLI::Range positive(1, std::numeric_limits<int32_t>::max());  // CLI::PositiveNumber prints doubles
  CLI::App* sub = app.add_subcommand("generate", "Generate text from prompts with a GGUF Llama-family model");
  sub->add_option("prompts", o->prompts, "prompt(s); several run together in one batch");
  sub->add_option("--prompts-file", o->prompts_file, "file with one prompt per line (added after PROMPT args)");
  sub->add_option("-m,--model", o->model, "GGUF model file (default: $PAGEDATTN_MODEL or " PAGEDATTN_DEFAULT_MODEL ")");
  sub->add_option("-n,--max-tokens", o->max_tokens, "new tokens per prompt at most")
      ->capture_default_str()->check(positive);
  sub->add_option("--temperature", o->temperature, "sampling temperature; 0 = greedy")
      ->capture_default_str()->check(CLI::Range(0.0f, 100.0f));
  sub->add_option("--top-p", o->top_p, "nucleus sampling: keep the most likely tokens up to this probability")
      ->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  sub->add_option("--top-k", o->top_k, "keep the k most likely tokens; 0 = all")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", o->seed, "random seed (prompt i draws from seed + i)")->capture_default_str();
  sub->add_flag("--chat", o->chat, "wrap each prompt in the model's chat template as a user message");
  sub->add_flag("--ignore-eos", o->ignore_eos, "generate max-tokens tokens even past end-of-generation tokens");
  sub->add_option("--stop", o->stop, "stop string (repeatable): the text ends before it")
      ->allow_extra_args(false);
  sub->add_option("--kv-memory", o->kv_memory_mib, "KV cache size in MiB")
      ->capture_default_str()->check(positive);
  sub->add_option("--kv-dtype", o->kv_dtype, "KV cache dtype")
      ->capture_default_str()->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  sub->add_option("--block-size", o->block_size, "tokens per KV block")
      ->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--max-seqs", o->max_num_seqs, "sequences per step at most")
      ->capture_default_str()->check(positive);
  sub->add_option("--max-batched-tokens", o->max_batched_tokens, "new tokens per step at most (chunked prefill)")
      ->capture_default_str()->check(positive);
  sub->add_flag("--no-prefix-caching", o->no_prefix_caching, "do not reuse cached KV blocks of common prefixes");
  sub->add_option("--stats-json", o->stats_json, "write the run's counters and times to this file as JSON");
  return [o] { return run_generate(*o); };
}

}  // namespace pagedattn::cli
