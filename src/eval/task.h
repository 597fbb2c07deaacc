// Tasks as data: a JSON task file names JSONL data files (one example per line), a
// prompt template over the example's fields, the reference field(s), generation limits,
// stop strings and metrics. docs/tasks.md specifies the format.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/json_file.h"

namespace pmpd::eval {

struct Task {
  std::string name, path, description;
  std::map<std::string, std::string> data;                   // split -> JSONL path (resolved)
  std::string prompt;                                        // template with {field} / {a.b}
  std::map<std::string, std::vector<std::string>> reference; // split -> reference fields ("*": any split)
  int max_new_tokens = 64;
  std::vector<std::string> stop;
  std::vector<std::string> metrics;
  // Continuation tasks: the prompt is the first `prompt_words` words of `field`, the
  // reference the rest.
  std::string continuation_field;
  int prompt_words = 0;
};

struct Example {
  int index = 0;      // line-based position among the split's examples
  std::string prompt;
  std::vector<std::string> references;
};

// Throws pmpd::Error naming the file (and line) on any problem.
Task load_task(const std::string& path);
// Examples of a split (`data_override` replaces the task's file); limit <= 0: all.
std::vector<Example> load_examples(const Task& t, const std::string& split, int limit,
                                   const std::string& data_override = "");

// Fills {field} and {a.b} from a JSON object; `where` names the file:line for errors.
std::string render_template(const std::string& tmpl, const Json& example, const std::string& where);

}  // namespace pmpd::eval
