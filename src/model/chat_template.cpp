#include "model/chat_template.h"

#include "core/check.h"

namespace pagedattn::model {
namespace {

constexpr std::string_view kStart = "<|im_start|>";
constexpr std::string_view kEnd = "<|im_end|>";
constexpr std::string_view kSystemOpen = "<|im_start|>system\n";

}  // namespace

ChatTemplate ChatTemplate::parse(std::string_view jinja) {
  PA_CHECK_ARG(jinja.find(kStart) != std::string_view::npos && jinja.find(kEnd) != std::string_view::npos,
               "chat template: only ChatML templates (<|im_start|>role ... <|im_end|>) are supported");
  ChatTemplate t;
  // SmolLM2's template: {% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n
  // You are ...<|im_end|>\n' }}{% endif %}. The literal system turn guarded by a "!= 'system'" test is the
  // default system message.
  const size_t open = jinja.find(kSystemOpen);
  if (open != std::string_view::npos) {
    const std::string_view before = jinja.substr(0, open);
    const bool guarded =
        before.find("!= 'system'") != std::string_view::npos || before.find("!= \"system\"") != std::string_view::npos;
    const size_t content = open + kSystemOpen.size();
    const size_t close = jinja.find(kEnd, content);
    if (guarded && close != std::string_view::npos)
      t.default_system_ = std::string(jinja.substr(content, close - content));
  }
  return t;
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && default_system_ && messages[0].role != "system") {
      out += kSystemOpen;
      out += *default_system_;
      out += kEnd;
      out += '\n';
    }
    out += kStart;
    out += messages[i].role;
    out += '\n';
    out += messages[i].content;
    out += kEnd;
    out += '\n';
  }
  if (add_generation_prompt) {
    out += kStart;
    out += "assistant\n";
  }
  return out;
}

}  // namespace pagedattn::model
