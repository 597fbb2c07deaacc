// Built-in chat templates for the paper's model families. Hugging Face ships templates
// as Jinja; rather than embed a Jinja engine we recognise the families by their
// markers and render them in C++.
#pragma once
#include <string>
#include <vector>

namespace pmpd {

enum class ChatTemplate { None, Vicuna, Zephyr, Llama2, ChatML };

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// "vicuna", "zephyr", "llama2", "chatml", "none"; throws on an unknown name.
ChatTemplate chat_template_from_name(const std::string& name);
const char* chat_template_name(ChatTemplate t);
// Guesses the family from a Jinja template's text (None if unrecognised).
ChatTemplate detect_chat_template(const std::string& jinja);
// Renders the conversation and opens the assistant's turn.
std::string render_chat(ChatTemplate t, const std::vector<ChatMessage>& messages);

}  // namespace pmpd
