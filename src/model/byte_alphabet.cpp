#include "model/byte_alphabet.h"

namespace pagedattn::model {
namespace {

std::string utf8_of(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {  // the alphabet stays below U+0800: two bytes
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

bool printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

}  // namespace

ByteAlphabet::ByteAlphabet() {
  to_byte_.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : next++;
    utf8_[b] = utf8_of(cp);
    to_byte_[cp] = static_cast<int16_t>(b);
  }
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet kAlphabet;
  return kAlphabet;
}

uint32_t next_code_point(std::string_view text, size_t& pos) {
  const auto c = static_cast<uint8_t>(text[pos]);
  int len = 1;
  uint32_t cp = c;
  if (c >= 0xF0 && c < 0xF8) {
    len = 4;
    cp = c & 0x07;
  } else if (c >= 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xC0) {
    len = 2;
    cp = c & 0x1F;
  }
  if (c >= 0xF8 || (c >= 0x80 && c < 0xC0) || pos + len > text.size()) {
    ++pos;
    return c;
  }
  for (int i = 1; i < len; ++i) {
    const auto cc = static_cast<uint8_t>(text[pos + i]);
    if ((cc & 0xC0) != 0x80) {
      ++pos;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  pos += len;
  return cp;
}

}  // namespace pagedattn::model
