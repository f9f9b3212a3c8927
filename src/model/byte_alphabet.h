// GPT-2's byte-level alphabet: every byte maps to one printable code point (bytes that are printable
// Latin-1 map to themselves, the others to U+0100 upwards, in byte order), so any byte string is text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pagedattn::model {

class ByteAlphabet {
 public:
  ByteAlphabet();
  // The UTF-8 of the code point that stands for byte b.
  const std::string& encode(uint8_t b) const { return utf8_[b]; }
  // The byte a code point stands for, or -1 when it is not in the alphabet.
  int decode(uint32_t code_point) const { return code_point < 512 ? to_byte_[code_point] : -1; }

 private:
  std::array<std::string, 256> utf8_;
  std::array<int16_t, 512> to_byte_;
};

const ByteAlphabet& byte_alphabet();

// Decodes one UTF-8 code point at text[pos]; advances pos. Invalid bytes decode as themselves (one byte).
uint32_t next_code_point(std::string_view text, size_t& pos);

}  // namespace pagedattn::model
