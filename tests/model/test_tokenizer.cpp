// The tokenizer against llama.cpp's ids (fixtures/tokenizer_llamacpp.json, made by
// scripts/make_tokenizer_fixture.py with llama-cpp-python) on >= 500 strings, decode(encode(s)) == s, and
// the chat template against jinja2's rendering of the model's template.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model_file.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"
#include "pagedattn/tokenizer.h"

using namespace pagedattn;

namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(pagedattn::testing::model_file())) return;
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::open(pagedattn::testing::model_file())));
    std::ifstream in(std::string(PAGEDATTN_MODEL_FIXTURES) + "/tokenizer_llamacpp.json");
    fixture_ = nlohmann::json::parse(in);
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }
  void SetUp() override { PA_REQUIRE_MODEL(); }

  static std::unique_ptr<Tokenizer> tokenizer_;
  static nlohmann::json fixture_;
};

std::unique_ptr<Tokenizer> TokenizerTest::tokenizer_;
nlohmann::json TokenizerTest::fixture_;

std::string show(const std::vector<int32_t>& ids) { return ::testing::PrintToString(ids); }

}  // namespace

TEST_F(TokenizerTest, MatchesLlamaCppOnTheCorpus) {
  const auto& cases = fixture_.at("cases");
  int with_special = 0;
  int mismatches = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const bool parse_special = c.at("parse_special");
    const std::vector<int32_t> expected = c.at("ids");
    const std::vector<int32_t> got = tokenizer_->encode(text, {.parse_special = parse_special});
    with_special += parse_special ? 1 : 0;
    if (got != expected && ++mismatches <= 10) {
      ADD_FAILURE() << "text " << ::testing::PrintToString(text) << " parse_special=" << parse_special
                    << "\n  llama.cpp: " << show(expected) << "\n  ours:      " << show(got);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " cases";
  EXPECT_GE(with_special, 500);
}

TEST_F(TokenizerTest, DecodeOfEncodeIsTheText) {
  for (const auto& c : fixture_.at("cases")) {
    const std::string text = c.at("text");
    const bool parse_special = c.at("parse_special");
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(text, {.parse_special = parse_special})), text);
  }
}

TEST_F(TokenizerTest, SpecialTokens) {
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.token_id("<|im_start|>"), 1);
  EXPECT_EQ(t.token_type(1), TokenType::control);
  EXPECT_EQ(t.encode("<|im_end|>"), (std::vector<int32_t>{2}));
  EXPECT_GT(t.encode("<|im_end|>", {.parse_special = false}).size(), 1u);
  // SmolLM2 asks for no BOS: add_special changes nothing.
  EXPECT_EQ(t.encode("hi", {.add_special = true}), t.encode("hi"));
  // Control tokens render only when asked.
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, 2}), "<|im_start|><|im_end|>");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, 2}, /*render_special=*/false), "");
  EXPECT_TRUE(t.is_end_of_generation(2));   // <|im_end|> (= EOS here)
  EXPECT_TRUE(t.is_end_of_generation(0));   // <|endoftext|>
  EXPECT_FALSE(t.is_end_of_generation(1));  // <|im_start|>
  EXPECT_THROW((void)t.token_to_piece(49152), Error);
  EXPECT_THROW((void)t.token_to_piece(-1), Error);
}

TEST_F(TokenizerTest, InvalidUtf8BytesReadAsReplacementCharacters) {
  // Expected ids from llama-cpp-python 0.3.36 (tokenize(b"ok \xff\xfe\xe2\x82 end", special=True)).
  const std::string bad = std::string("ok \xff\xfe") + "\xe2\x82" + " end";
  EXPECT_EQ(tokenizer_->encode(bad), (std::vector<int32_t>{2231, 216, 24211, 24211, 24211, 24211, 1112}));
  EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(bad)), "ok \uFFFD\uFFFD\uFFFD\uFFFD end");
  EXPECT_EQ(tokenizer_->encode("a\xc3"), (std::vector<int32_t>{81, 24211}));
  // A piece of a multi-byte character decodes to its bytes alone (streaming callers buffer them).
  const std::vector<int32_t> euro = tokenizer_->encode("€");
  std::string bytes;
  for (int32_t id : euro) bytes += tokenizer_->token_to_piece(id);
  EXPECT_EQ(bytes, "€");
}

TEST_F(TokenizerTest, ChatTemplateMatchesJinja) {
  ASSERT_TRUE(tokenizer_->has_chat_template());
  for (const auto& c : fixture_.at("chat")) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    EXPECT_EQ(tokenizer_->apply_chat_template(messages, c.at("add_generation_prompt")), c.at("text").get<std::string>())
        << c.dump();
  }
}
