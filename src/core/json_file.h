// Parsing JSON from files with errors that name the file, and typed field access with
// errors that name the field, so a bad config.json gives one clear line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pmpd {

using Json = nlohmann::json;

Json parse_json_file(const std::string& path);
Json parse_json_text(std::string_view text, const std::string& what);

// Field `key` of object `j` as T; `what` names the file for the error message.
template <typename T>
T json_get(const Json& j, const char* key, const std::string& what);
template <typename T>
T json_get_or(const Json& j, const char* key, T fallback, const std::string& what);

}  // namespace pmpd
