#include "eval/task.h"

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"

#include <fmt/ranges.h>

namespace pmpd::eval {

namespace fs = std::filesystem;

namespace {

const Json* lookup(const Json& j, const std::string& dotted) {
  const Json* cur = &j;
  size_t pos = 0;
  while (true) {
    size_t dot = dotted.find('.', pos);
    std::string key = dotted.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!cur->is_object() || !cur->contains(key)) return nullptr;
    cur = &(*cur)[key];
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

std::string text_of(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::vector<std::string> strings_of(const Json& v, const std::string& what) {
  if (v.is_string()) return {v.get<std::string>()};
  PMPD_CHECK(v.is_array(), "{}: expected a string or a list of strings", what);
  std::vector<std::string> out;
  for (auto& x : v) {
    PMPD_CHECK(x.is_string(), "{}: expected a string or a list of strings", what);
    out.push_back(x.get<std::string>());
  }
  return out;
}

}  // namespace

std::string render_template(const std::string& tmpl, const Json& ex, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] == '{') {
      size_t end = tmpl.find('}', i);
      PMPD_CHECK(end != std::string::npos, "{}: unclosed {{ in the prompt template", where);
      std::string field = tmpl.substr(i + 1, end - i - 1);
      const Json* v = lookup(ex, field);
      PMPD_CHECK(v && !v->is_null(), "{}: field \"{}\" missing", where, field);
      out += text_of(*v);
      i = end + 1;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

Task load_task(const std::string& path) {
  Json j = parse_json_file(path);
  PMPD_CHECK(j.is_object(), "{}: a task file is a JSON object", path);
  Task t;
  t.path = path;
  t.name = json_get_or<std::string>(j, "name", fs::path(path).stem().string(), path);
  t.description = json_get_or<std::string>(j, "description", "", path);
  PMPD_CHECK(j.contains("data") && j["data"].is_object() && !j["data"].empty(),
             "{}: \"data\" must map split names to JSONL files", path);
  for (auto& [split, file] : j["data"].items()) {
    PMPD_CHECK(file.is_string(), "{}: data.{} is not a path", path, split);
    fs::path p(file.get<std::string>());
    if (p.is_relative()) p = fs::path(path).parent_path() / p;  // relative to the task file
    t.data[split] = p.lexically_normal().string();
  }
  if (j.contains("continuation")) {
    const Json& c = j["continuation"];
    t.continuation_field = json_get<std::string>(c, "field", path + ": continuation");
    t.prompt_words = json_get<int>(c, "prompt_words", path + ": continuation");
    PMPD_CHECK(t.prompt_words > 0, "{}: continuation.prompt_words must be > 0", path);
  } else {
    t.prompt = json_get<std::string>(j, "prompt", path);
    PMPD_CHECK(j.contains("reference"), "{}: missing field \"reference\"", path);
    const Json& r = j["reference"];
    if (r.is_object()) {
      for (auto& [split, fields] : r.items()) t.reference[split] = strings_of(fields, path + ": reference." + split);
    } else {
      t.reference["*"] = strings_of(r, path + ": reference");
    }
  }
  t.max_new_tokens = json_get_or<int>(j, "max_new_tokens", 64, path);
  PMPD_CHECK(t.max_new_tokens > 0 && t.max_new_tokens <= 8192, "{}: max_new_tokens {} outside 1..8192", path,
             t.max_new_tokens);
  if (j.contains("stop")) t.stop = strings_of(j["stop"], path + ": stop");
  t.metrics = j.contains("metrics") ? strings_of(j["metrics"], path + ": metrics")
                                    : std::vector<std::string>{"rouge_l", "sacrebleu", "chrf"};
  for (auto& m : t.metrics)
    PMPD_CHECK(m == "rouge_l" || m == "sacrebleu" || m == "bleu" || m == "chrf" || m == "exact_match",
               "{}: unknown metric \"{}\" (rouge_l, sacrebleu, bleu, chrf, exact_match)", path, m);
  return t;
}

std::vector<Example> load_examples(const Task& t, const std::string& split, int limit, const std::string& data_override) {
  std::string file = data_override;
  if (file.empty()) {
    auto it = t.data.find(split);
    PMPD_CHECK(it != t.data.end(), "{}: no data for split \"{}\"", t.path, split);
    file = it->second;
  }
  std::vector<std::string> fields;
  if (t.continuation_field.empty()) {
    auto it = t.reference.find(split);
    if (it == t.reference.end()) it = t.reference.find("*");
    PMPD_CHECK(it != t.reference.end(), "{}: no reference fields for split \"{}\"", t.path, split);
    fields = it->second;
  }
  std::vector<Example> out;
  for_each_jsonl(file, [&](const Json& j, const std::string& where) {
    if (limit > 0 && int(out.size()) >= limit) return false;
    PMPD_CHECK(j.is_object(), "{}: an example is a JSON object", where);
    Example ex;
    ex.index = int(out.size());
    if (!t.continuation_field.empty()) {
      const Json* v = lookup(j, t.continuation_field);
      PMPD_CHECK(v && v->is_string(), "{}: field \"{}\" missing", where, t.continuation_field);
      std::string text = v->get<std::string>();
      size_t cut = 0;
      for (int w = 0; w < t.prompt_words && cut != std::string::npos; ++w) {
        cut = text.find_first_not_of(' ', cut);
        if (cut != std::string::npos) cut = text.find(' ', cut);
      }
      PMPD_CHECK(cut != std::string::npos && cut < text.size(), "{}: text has fewer than {} words to continue", where,
                 t.prompt_words + 1);
      ex.prompt = text.substr(0, cut);
      ex.references = {text.substr(cut + 1)};
    } else {
      ex.prompt = render_template(t.prompt, j, where);
      for (auto& f : fields) {
        const Json* v = lookup(j, f);
        if (v && v->is_string() && !v->get<std::string>().empty()) ex.references.push_back(v->get<std::string>());
      }
      PMPD_CHECK(!ex.references.empty(), "{}: empty or missing reference (fields: {})", where, fmt::join(fields, ", "));
    }
    out.push_back(std::move(ex));
    return true;
  });
  PMPD_CHECK(!out.empty(), "{}: no examples", file);
  return out;
}

}  // namespace pmpd::eval
