// pmpd info: what a checkpoint holds (architecture, shapes, tokenizer, memory).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "model/model_loader.h"
#include "tokenizer/chat_template.h"

namespace pmpd::cli {

namespace {
// The model's parameters: a quantized matrix counts as its rows x cols weights, not as its
// planes, per-width tables and outliers. (A tied head quantized with --quantize-head is a
// matrix of its own in the file, so it counts beside the embeddings.)
size_t model_parameters(const Model& m) {
  size_t n = 0;
  for (auto& [name, t] : m.tensors.tensors) {
    bool nested = name.ends_with(".planes") || name.ends_with(".sp_rowptr") || name.ends_with(".sp_col") ||
                  name.ends_with(".sp_val");
    for (int b = 1; b <= 8 && !nested; ++b) nested = name.ends_with(".lut" + std::to_string(b));
    if (!nested) n += size_t(t.numel());
  }
  for (const LayerWeights& lw : m.layers)
    for (const Linear* l : {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down})
      if (l->q) n += size_t(l->q->rows) * size_t(l->q->cols);
  if (m.output.q) n += size_t(m.output.q->rows) * size_t(m.output.q->cols);
  return n;
}
}  // namespace

Action add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print a model's architecture, shapes, tokenizer and memory use");
  auto model = std::make_shared<std::string>();
  auto tokenizer = std::make_shared<std::string>();
  auto tensors = std::make_shared<bool>(false);
  cmd->add_option("-m,--model", *model, "Model: Hugging Face directory, .gguf or llama2.c .bin (default: the project's model)");
  cmd->add_option("--tokenizer", *tokenizer, "Tokenizer file or directory, overriding the one beside the model");
  cmd->add_flag("--tensors", *tensors, "List every tensor");
  return [=]() {
    std::string path = model->empty() ? default_model_path() : *model;
    auto m = load_model(path, {*tokenizer});
    const ModelConfig& c = m->config;
    fmt::print("model:      {}\nformat:     {}\narch:       {}\n", m->path, m->format, c.describe());
    size_t stored = 0;
    std::map<std::string, size_t> by_dtype;
    for (auto& [n, t] : m->tensors.tensors) {
      stored += size_t(t.numel());
      by_dtype[std::string(dtype_name(t.dtype))] += size_t(t.numel());
    }
    const size_t params = model_parameters(*m);
    if (params == stored) fmt::print("parameters: {} ({:.2f} M)\n", params, params / 1e6);
    else fmt::print("parameters: {} ({:.2f} M), stored as {} elements of planes and tables\n", params, params / 1e6, stored);
    for (auto& [d, n] : by_dtype) fmt::print("  {}: {} elements\n", d, n);
    fmt::print("weights:    {:.2f} MiB (memory-mapped)\n", m->weight_bytes() / 1048576.0);
    if (!m->widened_from.empty()) {
      std::vector<std::string> parts;
      int count = 0;
      for (auto& [d, n] : m->widened_from) parts.push_back(fmt::format("{} {}", n, d)), count += n;
      fmt::print("widened:    {} llama.cpp block-quantized matrices ({}) to 16-bit rows at load; "
                 "`pmpd quantize` turns them into nested bit planes\n", count, fmt::join(parts, ", "));
    }
    if (m->quantized()) {
      size_t read_lo = 0, read_hi = 0;
      for (auto& lw : m->layers)
        for (const Linear* l : {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down})
          if (l->q) read_lo += l->q->bytes_read(m->quant.bits_min), read_hi += l->q->bytes_read(m->quant.bits_max);
      if (m->output.q)
        read_lo += m->output.q->bytes_read(m->quant.bits_min), read_hi += m->output.q->bytes_read(m->quant.bits_max);
      fmt::print("quantized:  {} tensors, {}, bits {} to {}; linear weights read per token: {:.2f} MiB at {} bits, "
                 "{:.2f} MiB at {} bits\n", m->quant.quantized_tensors, m->quant.method, m->quant.bits_min,
                 m->quant.bits_max, read_lo / 1048576.0, m->quant.bits_min, read_hi / 1048576.0, m->quant.bits_max);
      fmt::print("LM head:    {}\n", m->output.q ? "quantized (runs at each step's width; counted above)" : "16-bit");
    }
    size_t kv = size_t(2) * c.n_layers * c.max_seq_len * c.kv_dim() * 2;
    fmt::print("KV cache:   {:.2f} MiB at the full context of {} tokens (16-bit)\n", kv / 1048576.0, c.max_seq_len);
    if (m->tokenizer) {
      auto& t = *m->tokenizer;
      fmt::print("tokenizer:  {} ({}), {} tokens, bos {} eos {}, add_bos {}, chat template {}\n", t.source,
                 t.kind == TokenizerKind::SentencePiece ? "sentencepiece bpe" : "byte-level bpe", t.pieces.size(),
                 t.bos, t.eos, t.add_bos, chat_template_name(detect_chat_template(t.chat_template)));
    } else {
      fmt::print("tokenizer:  none (use --prompt-ids, or --tokenizer FILE)\n");
    }
    if (*tensors)
      for (auto& [n, t] : m->tensors.tensors)
        fmt::print("  {:40} {:5} {}\n", n, dtype_name(t.dtype), shape_str(t.shape));
    return 0;
  };
}

}  // namespace pmpd::cli
