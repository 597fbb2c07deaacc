// Parsing JSON from files with errors that name the file, and typed field access with
// errors that name the field, so a bad config.json gives one clear line.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace pmpd {

using Json = nlohmann::json;

Json parse_json_file(const std::string& path);

// Calls fn(object, "file:line") for every non-blank line of a JSONL file, until fn
// returns false; a line that is not JSON is an error naming file and line.
void for_each_jsonl(const std::string& path, const std::function<bool(const Json&, const std::string&)>& fn);
Json parse_json_text(std::string_view text, const std::string& what);

// Field `key` of object `j` as T; `what` names the file for the error message.
template <typename T>
T json_get(const Json& j, const char* key, const std::string& what);
template <typename T>
T json_get_or(const Json& j, const char* key, T fallback, const std::string& what);

}  // namespace pmpd
