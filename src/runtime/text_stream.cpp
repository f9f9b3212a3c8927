#include "runtime/text_stream.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace pagedattn {

size_t complete_utf8_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of the last character.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(n, 4); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for the lead
    const size_t length = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return length > back ? n - back : n;
  }
  return n;  // only continuation bytes: not a character we can complete
}

TextStream::TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (size_t i = 0; i < stop_.size(); ++i) {
    PA_CHECK_ARG(!stop_[i].empty(), "stop[{}] is empty: expected a non-empty stop string", i);
    hold_ = std::max(hold_, stop_[i].size() - 1);
  }
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_.append(bytes);
  // Everything emitted so far ended at least hold_ bytes before the end, so a stop string that appears now
  // lies wholly inside pending_.
  size_t first = std::string::npos;
  for (const std::string& s : stop_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string text = pending_.substr(0, first);
    pending_.clear();
    return text;
  }
  const size_t ready = complete_utf8_prefix(std::string_view(pending_).substr(0, pending_.size() - std::min(hold_, pending_.size())));
  std::string text = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return text;
}

std::string TextStream::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace pagedattn
