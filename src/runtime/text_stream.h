// Turns the bytes of generated tokens into text that is safe to stream: a UTF-8 character split across
// tokens is held back until complete, and, when stop strings are set, so is any tail that could still grow
// into one. The first stop string to appear ends the text just before it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagedattn {

class TextStream {
 public:
  // Throws pagedattn::Error for an empty stop string.
  explicit TextStream(std::vector<std::string> stop = {});

  // Adds one token's bytes; returns the text that is final now. After a stop string appeared, returns the
  // text before it once and then nothing.
  std::string push(std::string_view bytes);
  // At the end of generation: whatever is still held back (an incomplete character as its raw bytes).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_;
  size_t hold_ = 0;  // bytes to hold back for stop strings: the longest one's length - 1
  std::string pending_;
  bool stopped_ = false;
};

// The length of the longest prefix of s that does not end inside a UTF-8 character (invalid bytes count
// as complete: they are passed through, not held forever).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace pagedattn
