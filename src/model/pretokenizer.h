// Pre-tokenization: the regex splits of llama.cpp's BPE pre-tokenizers, run with PCRE2.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pagedattn::model {

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

class PreTokenizer {
 public:
  // `pre` is tokenizer.ggml.pre (e.g. "smollm", "gpt2"); throws for names it does not know.
  explicit PreTokenizer(std::string_view pre);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Splits text[span] into pieces: each regex in turn splits every piece into its matches and the text
  // between them (llama.cpp's unicode_regex_split). Pieces are byte ranges of `text`, in order, covering it.
  std::vector<Span> split(std::string_view text, Span span) const;

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace pagedattn::model
