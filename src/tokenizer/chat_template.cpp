#include "tokenizer/chat_template.h"

#include "core/error.h"

namespace pmpd {

ChatTemplate chat_template_from_name(const std::string& n) {
  if (n == "vicuna") return ChatTemplate::Vicuna;
  if (n == "zephyr") return ChatTemplate::Zephyr;
  if (n == "llama2") return ChatTemplate::Llama2;
  if (n == "chatml") return ChatTemplate::ChatML;
  if (n == "none") return ChatTemplate::None;
  fail("unknown chat template \"{}\" (vicuna, zephyr, llama2, chatml, none)", n);
}

const char* chat_template_name(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::Vicuna: return "vicuna";
    case ChatTemplate::Zephyr: return "zephyr";
    case ChatTemplate::Llama2: return "llama2";
    case ChatTemplate::ChatML: return "chatml";
    default: return "none";
  }
}

ChatTemplate detect_chat_template(const std::string& j) {
  if (j.find("<|im_start|>") != std::string::npos) return ChatTemplate::ChatML;
  if (j.find("<|assistant|>") != std::string::npos) return ChatTemplate::Zephyr;
  if (j.find("[INST]") != std::string::npos) return ChatTemplate::Llama2;
  if (j.find("ASSISTANT:") != std::string::npos) return ChatTemplate::Vicuna;
  return ChatTemplate::None;
}

std::string render_chat(ChatTemplate t, const std::vector<ChatMessage>& msgs) {
  std::string out;
  switch (t) {
    case ChatTemplate::None:
      for (auto& m : msgs) out += m.content + (msgs.size() > 1 ? "\n" : "");
      return out;
    case ChatTemplate::Vicuna: {  // FastChat's vicuna_v1.1
      std::string system =
          "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the user's questions.";
      for (auto& m : msgs)
        if (m.role == "system") system = m.content;
      out = system;
      for (auto& m : msgs) {
        if (m.role == "user") out += " USER: " + m.content;
        else if (m.role == "assistant") out += " ASSISTANT: " + m.content + "</s>";
      }
      return out + " ASSISTANT:";
    }
    case ChatTemplate::Zephyr:
      for (auto& m : msgs) out += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      return out + "<|assistant|>\n";
    case ChatTemplate::Llama2: {
      std::string system;
      bool first_user = true;
      for (auto& m : msgs) {
        if (m.role == "system") { system = m.content; continue; }
        if (m.role == "user") {
          std::string c = m.content;
          if (first_user && !system.empty()) c = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + c;
          out += std::string(first_user ? "" : "<s>") + "[INST] " + c + " [/INST]";
          first_user = false;
        } else if (m.role == "assistant") {
          out += " " + m.content + " </s>";
        }
      }
      return out;
    }
    case ChatTemplate::ChatML:
      for (auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      return out + "<|im_start|>assistant\n";
  }
  return out;
}

}  // namespace pmpd
