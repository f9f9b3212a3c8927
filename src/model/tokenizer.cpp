#include "pagedattn/tokenizer.h"

#include <algorithm>
#include <optional>
#include <queue>
#include <unordered_map>

#include "core/check.h"
#include "model/byte_alphabet.h"
#include "model/chat_template.h"
#include "model/pretokenizer.h"
#include "pagedattn/gguf.h"

namespace pagedattn {

struct Tokenizer::Impl {
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::unordered_map<std::string, int32_t> token_ids;
  std::unordered_map<std::string, int32_t> merge_ranks;  // "left right" -> rank
  model::PreTokenizer pre;
  std::vector<int32_t> specials;  // control / user-defined / unknown tokens, longest text first
  std::vector<int32_t> end_of_generation;
  int32_t bos = -1;
  int32_t eos = -1;
  bool add_bos = false;
  bool add_eos = false;
  std::optional<model::ChatTemplate> chat_template;

  explicit Impl(std::string_view pre_name) : pre(pre_name) {}

  void check_id(int32_t id) const {
    PA_CHECK_ARG(id >= 0 && id < static_cast<int32_t>(tokens.size()), "tokenizer: token id {}: expected [0, {})", id,
                 tokens.size());
  }

  // Byte-pair merges of one pre-tokenized piece, appended to out as token ids.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
};

namespace {

struct Symbol {
  size_t begin;  // byte range in the piece's byte-level text
  size_t end;
  int prev;
  int next;
};

struct Candidate {
  int32_t rank;
  int left;
  size_t left_len;  // lengths when queued: a stale candidate (a side merged since) is skipped
  size_t right_len;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

}  // namespace

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const model::ByteAlphabet& alphabet = model::byte_alphabet();
  std::string text;
  std::vector<Symbol> symbols;
  for (char c : piece) {
    const std::string& u = alphabet.encode(static_cast<uint8_t>(c));
    const int i = static_cast<int>(symbols.size());
    symbols.push_back({text.size(), text.size() + u.size(), i - 1, i + 1});
    text += u;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  std::string key;
  auto try_pair = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[l.next];
    key.assign(text, l.begin, l.end - l.begin);
    key += ' ';
    key.append(text, r.begin, r.end - r.begin);
    const auto it = merge_ranks.find(key);
    if (it != merge_ranks.end()) queue.push({it->second, left, l.end - l.begin, r.end - r.begin});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) try_pair(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[c.left];
    if (l.end == l.begin || l.next < 0) continue;  // merged away
    Symbol& r = symbols[l.next];
    if (l.end - l.begin != c.left_len || r.end - r.begin != c.right_len) continue;  // stale
    l.end = r.end;
    r.begin = r.end;  // empty: merged into l
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    try_pair(l.prev);
    try_pair(c.left);
  }

  for (int i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    const auto it = token_ids.find(text.substr(s.begin, s.end - s.begin));
    if (it != token_ids.end()) {
      out.push_back(it->second);
      continue;
    }
    // A merge result missing from the vocabulary (inconsistent metadata): fall back to its bytes.
    size_t pos = s.begin;
    while (pos < s.end) {
      const size_t start = pos;
      model::next_code_point(text, pos);
      const auto byte_it = token_ids.find(text.substr(start, pos - start));
      PA_CHECK_ARG(byte_it != token_ids.end(), "tokenizer: the vocabulary has no token for byte-level character '{}'",
                   text.substr(start, pos - start));
      out.push_back(byte_it->second);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model");
  PA_CHECK_ARG(model == "gpt2", "tokenizer: tokenizer.ggml.model = '{}': only 'gpt2' (byte-level BPE) is supported",
               model);
  auto impl = std::make_unique<Impl>(file.get_string("tokenizer.ggml.pre", "gpt2"));
  impl->tokens = file.get_string_array("tokenizer.ggml.tokens");
  const auto n = static_cast<int64_t>(impl->tokens.size());
  PA_CHECK_ARG(n > 0 && n < INT32_MAX, "tokenizer: tokenizer.ggml.tokens has {} entries", n);

  impl->types.assign(impl->tokens.size(), TokenType::normal);
  if (file.contains("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    PA_CHECK_ARG(static_cast<int64_t>(types.size()) == n,
                 "tokenizer: tokenizer.ggml.token_type has {} entries: expected {} (one per token)", types.size(), n);
    for (int64_t i = 0; i < n; ++i) {
      PA_CHECK_ARG(types[i] >= 0 && types[i] <= 6, "tokenizer: tokenizer.ggml.token_type[{}] = {}: expected 0..6", i,
                   types[i]);
      impl->types[i] = static_cast<TokenType>(types[i]);
    }
  }
  impl->token_ids.reserve(impl->tokens.size());
  for (int32_t i = 0; i < n; ++i) impl->token_ids.emplace(impl->tokens[i], i);  // first id wins on duplicates

  const std::vector<std::string> merges = file.get_string_array("tokenizer.ggml.merges");
  impl->merge_ranks.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    PA_CHECK_ARG(merges[i].find(' ', 1) != std::string::npos,
                 "tokenizer: tokenizer.ggml.merges[{}] = '{}': expected two pieces separated by a space", i, merges[i]);
    impl->merge_ranks.emplace(merges[i], static_cast<int32_t>(i));
  }

  for (int32_t i = 0; i < n; ++i) {
    const TokenType t = impl->types[i];
    if ((t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) &&
        !impl->tokens[i].empty()) {
      impl->specials.push_back(i);
    }
  }
  std::stable_sort(impl->specials.begin(), impl->specials.end(),
                   [&](int32_t a, int32_t b) { return impl->tokens[a].size() > impl->tokens[b].size(); });

  auto optional_id = [&](std::string_view key) -> int32_t {
    if (!file.contains(key)) return -1;
    const uint64_t id = file.get_uint(key);
    PA_CHECK_ARG(id < static_cast<uint64_t>(n), "tokenizer: {} = {}: expected a token id in [0, {})", key, id, n);
    return static_cast<int32_t>(id);
  };
  impl->bos = optional_id("tokenizer.ggml.bos_token_id");
  impl->eos = optional_id("tokenizer.ggml.eos_token_id");
  impl->add_bos = file.get_bool("tokenizer.ggml.add_bos_token", false);
  impl->add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);

  if (impl->eos >= 0) impl->end_of_generation.push_back(impl->eos);
  const int32_t eot = optional_id("tokenizer.ggml.eot_token_id");
  if (eot >= 0) impl->end_of_generation.push_back(eot);
  for (std::string_view text : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"}) {
    const auto it = impl->token_ids.find(std::string(text));
    if (it != impl->token_ids.end() && impl->types[it->second] == TokenType::control) {
      impl->end_of_generation.push_back(it->second);
    }
  }
  std::sort(impl->end_of_generation.begin(), impl->end_of_generation.end());
  impl->end_of_generation.erase(std::unique(impl->end_of_generation.begin(), impl->end_of_generation.end()),
                                impl->end_of_generation.end());

  if (file.contains("tokenizer.chat_template")) {
    impl->chat_template = model::ChatTemplate::parse(file.get_string("tokenizer.chat_template"));
  }
  return Tokenizer(std::move(impl));
}

namespace {

// llama.cpp reads text as UTF-8 and replaces each byte that does not start a complete sequence with
// U+FFFD; doing the same keeps our ids equal to its ids on invalid input.
std::optional<std::string> replace_invalid_utf8(std::string_view text) {
  std::string out;
  bool changed = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const uint32_t cp = model::next_code_point(text, pos);
    if (pos - start == 1 && cp >= 0x80) {
      out += "\xEF\xBF\xBD";
      changed = true;
    } else {
      out.append(text, start, pos - start);
    }
  }
  return changed ? std::optional<std::string>(std::move(out)) : std::nullopt;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view input, const EncodeOptions& options) const {
  const Impl& m = *impl_;
  const std::optional<std::string> sanitized = replace_invalid_utf8(input);
  const std::string_view text = sanitized ? std::string_view(*sanitized) : input;
  // Fragments: raw text ranges (token == -1) or special tokens found in the text.
  struct Fragment {
    int32_t token;
    model::Span span;
  };
  std::vector<Fragment> fragments{{-1, {0, text.size()}}};
  for (int32_t id : m.specials) {
    if (!options.parse_special && m.types[id] != TokenType::user_defined) continue;
    const std::string& special = m.tokens[id];
    std::vector<Fragment> next;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.span.begin;
      while (pos < f.span.end) {
        const size_t hit = text.substr(0, f.span.end).find(special, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({-1, {pos, hit}});
        next.push_back({id, {hit, hit + special.size()}});
        pos = hit + special.size();
      }
      if (pos < f.span.end) next.push_back({-1, {pos, f.span.end}});
    }
    fragments = std::move(next);
  }

  std::vector<int32_t> out;
  if (options.add_special && m.add_bos && m.bos >= 0) out.push_back(m.bos);
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    for (const model::Span& piece : m.pre.split(text, f.span)) {
      m.encode_piece(text.substr(piece.begin, piece.end - piece.begin), out);
    }
  }
  if (options.add_special && m.add_eos && m.eos >= 0) out.push_back(m.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Impl& m = *impl_;
  m.check_id(id);
  const std::string& text = m.tokens[id];
  switch (m.types[id]) {
    case TokenType::control:
    case TokenType::unknown:
      return render_special ? text : std::string();
    case TokenType::user_defined:
      return text;
    case TokenType::unused:
      return {};
    default:
      break;
  }
  // Normal (and byte) tokens are in the byte-level alphabet: map each code point back to its byte.
  std::string bytes;
  const model::ByteAlphabet& alphabet = model::byte_alphabet();
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const int b = alphabet.decode(model::next_code_point(text, pos));
    if (b >= 0) {
      bytes += static_cast<char>(b);
    } else {
      bytes.append(text, start, pos - start);  // not in the alphabet: keep as written
    }
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, render_special);
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->tokens[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  impl_->check_id(id);
  return impl_->types[id];
}

int32_t Tokenizer::token_id(std::string_view text) const {
  const auto it = impl_->token_ids.find(std::string(text));
  return it == impl_->token_ids.end() ? -1 : it->second;
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(impl_->end_of_generation.begin(), impl_->end_of_generation.end(), id);
}

const std::vector<int32_t>& Tokenizer::end_of_generation_ids() const { return impl_->end_of_generation; }

bool Tokenizer::has_chat_template() const { return impl_->chat_template.has_value(); }

std::string Tokenizer::apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  PA_CHECK_ARG(impl_->chat_template.has_value(), "apply_chat_template: the model has no tokenizer.chat_template");
  return impl_->chat_template->apply(messages, add_generation_prompt);
}

}  // namespace pagedattn
