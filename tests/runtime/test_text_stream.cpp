// TextStream: UTF-8 characters split across tokens are held back until complete, stop strings end the text
// before them even when they span tokens, and a stop string's prefix is held back only while it can still grow.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pagedattn/error.h"
#include "runtime/text_stream.h"

using namespace pagedattn;

namespace {

std::string feed(TextStream& s, const std::vector<std::string>& pieces, std::vector<std::string>* emitted = nullptr) {
  std::string all;
  for (const std::string& p : pieces) {
    std::string t = s.push(p);
    if (emitted) emitted->push_back(t);
    all += t;
  }
  return all;
}

}  // namespace

TEST(Utf8Prefix, CutsBeforeAnIncompleteCharacterOnly) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1u);              // é's lead byte alone
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3u);          // é complete
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98"), 1u);      // 3 of 😀's 4 bytes
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98\x80"), 5u);  // 😀 complete
  EXPECT_EQ(complete_utf8_prefix("\x80\x80\x80\x80"), 4u);   // stray continuation bytes pass through
}

TEST(TextStream, HoldsBackASplitCharacterUntilComplete) {
  TextStream s;
  std::vector<std::string> out;
  EXPECT_EQ(feed(s, {"I ", "\xF0\x9F", "\x98", "\x80", "!"}, &out), "I \xF0\x9F\x98\x80!");
  EXPECT_EQ(out, (std::vector<std::string>{"I ", "", "", "\xF0\x9F\x98\x80", "!"}));
  EXPECT_EQ(s.flush(), "");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStream, FlushReturnsAnIncompleteTail) {
  TextStream s;
  EXPECT_EQ(s.push("ok\xE2\x82"), "ok");
  EXPECT_EQ(s.flush(), "\xE2\x82");
}

TEST(TextStream, StopStringSpanningTokensEndsTheTextBeforeIt) {
  TextStream s({"\nUser:"});
  std::vector<std::string> out;
  EXPECT_EQ(feed(s, {"Hello", " there", "\nUs", "er", ": more", " text"}, &out), "Hello there");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.flush(), "");
  // Nothing of the stop string was ever emitted, and nothing after it.
  for (const std::string& t : out) EXPECT_EQ(t.find('\n'), std::string::npos);
}

TEST(TextStream, APrefixThatDoesNotBecomeAStopStringIsReleased) {
  TextStream s({"END"});
  std::string all = feed(s, {"the E", "N", "D", "?"});
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(all, "the ");
  TextStream t({"END"});
  all = feed(t, {"the E", "N", "d of it"});
  all += t.flush();
  EXPECT_FALSE(t.stopped());
  EXPECT_EQ(all, "the ENd of it");
}

TEST(TextStream, EarliestOfSeveralStopStringsWins) {
  TextStream s({"world", "lo"});
  EXPECT_EQ(feed(s, {"hello world"}), "hel");
}

TEST(TextStream, EmptyStopStringIsRefused) {
  try {
    TextStream s({"x", ""});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "stop[1] is empty: expected a non-empty stop string");
  }
}
