// The chat template of a model, recognized from its jinja source and rendered natively (no jinja engine):
// ChatML, with the optional default system message some templates (SmolLM2's) insert.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pagedattn/tokenizer.h"

namespace pagedattn::model {

class ChatTemplate {
 public:
  // Throws pagedattn::Error for a template it does not recognize.
  static ChatTemplate parse(std::string_view jinja);
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  const std::optional<std::string>& default_system() const { return default_system_; }

 private:
  std::optional<std::string> default_system_;
};

}  // namespace pagedattn::model
