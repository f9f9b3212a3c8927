// Byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, tokenizing exactly as
// llama.cpp does for `tokenizer.ggml.model = "gpt2"`:
//   1. special tokens (control and user-defined) written in the text are split out first, longest first;
//   2. the rest is pre-tokenized by the regexes of `tokenizer.ggml.pre` (PCRE2), each applied in turn to
//      the pieces the previous one left (matches and the text between them both become pieces);
//   3. each piece is mapped byte by byte to GPT-2's printable byte alphabet and merged by merge rank
//      (lowest rank first, leftmost on ties).
// Also the model's chat template (ChatML, as in SmolLM2-Instruct) rendered like its jinja source.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pagedattn {

class GgufFile;

// The token types of `tokenizer.ggml.token_type` (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct EncodeOptions {
  // Add BOS (and EOS) where the model's metadata asks for them (tokenizer.ggml.add_bos_token /
  // add_eos_token); SmolLM2 asks for neither.
  bool add_special = false;
  // Control tokens written in the text ("<|im_start|>") become their ids; otherwise they are tokenized
  // as plain text. User-defined tokens are always matched (llama.cpp's rule).
  bool parse_special = true;
};

class Tokenizer {
 public:
  // Throws pagedattn::Error when the metadata is missing, inconsistent, or of an unsupported kind
  // (tokenizer.ggml.model other than "gpt2", an unknown tokenizer.ggml.pre).
  static Tokenizer from_gguf(const GgufFile& file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Bytes that are not valid UTF-8 are read as U+FFFD, one per byte (as llama.cpp does).
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Concatenated token bytes. Control tokens appear as their text when render_special, else vanish.
  std::string decode(std::span<const int32_t> ids, bool render_special = true) const;
  // The bytes of one token (may be part of a UTF-8 character: streaming callers buffer until complete).
  std::string token_to_piece(int32_t id, bool render_special = true) const;

  int32_t vocab_size() const;
  const std::string& token_text(int32_t id) const;  // as stored in the vocabulary (byte-level alphabet)
  TokenType token_type(int32_t id) const;
  int32_t token_id(std::string_view text) const;  // -1 when absent
  int32_t bos_id() const;                         // -1 when the model has none
  int32_t eos_id() const;
  // Tokens that end a generation: EOS plus the end-of-turn control tokens the vocabulary has
  // ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"), as llama.cpp's is_eog.
  bool is_end_of_generation(int32_t id) const;
  const std::vector<int32_t>& end_of_generation_ids() const;

  // Renders `messages` with the model's chat template (tokenizer.chat_template). Supported: ChatML
  // ("<|im_start|>role\ncontent<|im_end|>\n" per message, "<|im_start|>assistant\n" as generation prompt),
  // including a default system message the template inserts when the first message is not a system one.
  // Throws for other templates.
  std::string apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  bool has_chat_template() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagedattn
