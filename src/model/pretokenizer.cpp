#include "model/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "core/check.h"

namespace pagedattn::model {
namespace {

// llama.cpp's whitespace set (Unicode White_Space), written out because PCRE2's \s differs (it has no
// U+0085) and llama.cpp classifies with its own tables.
#define PA_WS \
  "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

// GPT-2's pattern. llama.cpp writes it without the final `|\s+` but splits with a hand-written matcher
// that behaves as if it were there (a lone whitespace before a non-space is its own piece either way).
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" PA_WS "\\p{L}\\p{N}]+|[" PA_WS "]+(?![^" PA_WS "])|[" PA_WS "]+";
constexpr const char* kDigit = "\\p{N}";

struct PreType {
  std::string_view name;
  std::vector<const char*> regexes;
};

// tokenizer.ggml.pre -> regexes, as llama.cpp's llama_vocab::impl::load groups them.
const std::vector<PreType>& pre_types() {
  static const std::vector<PreType> kTypes = {
      {"gpt-2", {kGpt2}},
      {"gpt2", {kGpt2}},
      {"mpt", {kGpt2}},
      {"olmo", {kGpt2}},
      {"jais", {kGpt2}},
      {"smollm", {kDigit, kGpt2}},
      {"starcoder", {kDigit, kGpt2}},
      {"refact", {kDigit, kGpt2}},
      {"command-r", {kDigit, kGpt2}},
      {"codeshell", {kDigit, kGpt2}},
      {"exaone", {kDigit, kGpt2}},
      {"minerva-7b", {kDigit, kGpt2}},
  };
  return kTypes;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  explicit Regex(const char* pattern) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      PA_CHECK(false, ErrorKind::runtime, "tokenizer: cannot compile pre-tokenizer regex at {}: {}", err_offset,
               reinterpret_cast<const char*>(msg.data()));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up: matching works without it
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends to `out` the matches of this regex in text[span] and the gaps between them.
  void split(std::string_view text, Span span, pcre2_match_data* md, std::vector<Span>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + span.begin);
    const size_t length = span.end - span.begin;
    size_t pos = 0;
    size_t last = 0;
    while (pos < length) {
      const int rc = pcre2_match(code, subject, length, pos, 0, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      PA_CHECK(rc >= 0, ErrorKind::runtime, "tokenizer: PCRE2 match failed with code {}", rc);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t mb = ov[0];
      const size_t me = ov[1];
      if (me == mb) {  // no pattern here matches empty, but never loop on one
        pos = mb + 1;
        continue;
      }
      if (mb > last) out.push_back({span.begin + last, span.begin + mb});
      out.push_back({span.begin + mb, span.begin + me});
      last = pos = me;
    }
    if (last < length) out.push_back({span.begin + last, span.end});
  }
};

PreTokenizer::PreTokenizer(std::string_view pre) {
  for (const PreType& t : pre_types()) {
    if (t.name == pre) {
      for (const char* r : t.regexes) regexes_.push_back(std::make_unique<Regex>(r));
      return;
    }
  }
  PA_CHECK_ARG(false, "tokenizer: tokenizer.ggml.pre = '{}' is not supported (known: gpt2 and smollm families)", pre);
}

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

std::vector<Span> PreTokenizer::split(std::string_view text, Span span) const {
  std::vector<Span> pieces{span};
  for (const auto& regex : regexes_) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(regex->code, nullptr), &pcre2_match_data_free);
    PA_CHECK(md != nullptr, ErrorKind::out_of_memory, "tokenizer: cannot allocate PCRE2 match data");
    std::vector<Span> next;
    next.reserve(pieces.size() * 2);
    for (const Span& s : pieces) regex->split(text, s, md.get(), next);
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace pagedattn::model
