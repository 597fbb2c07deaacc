#include "core/json_file.h"

#include "core/error.h"
#include "core/mapped_file.h"

namespace pmpd {

Json parse_json_text(std::string_view text, const std::string& what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("{}: not valid JSON", what);
  return j;
}

Json parse_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

void for_each_jsonl(const std::string& path, const std::function<bool(const Json&, const std::string&)>& fn) {
  const std::string raw = read_text_file(path);
  size_t pos = 0;
  int line_no = 0;
  while (pos < raw.size()) {
    size_t end = raw.find('\n', pos);
    if (end == std::string::npos) end = raw.size();
    std::string_view line(raw.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (!fn(parse_json_text(line, where), where)) return;
  }
}

namespace {
template <typename T>
bool fits(const Json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else if constexpr (std::is_integral_v<T>) return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else return true;
}
}  // namespace

template <typename T>
T json_get(const Json& j, const char* key, const std::string& what) {
  if (!j.is_object() || !j.contains(key)) fail("{}: missing field \"{}\"", what, key);
  const Json& v = j.at(key);
  if (!fits<T>(v)) fail("{}: field \"{}\" has the wrong type", what, key);
  return v.get<T>();
}

template <typename T>
T json_get_or(const Json& j, const char* key, T fallback, const std::string& what) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return fallback;
  return json_get<T>(j, key, what);
}

template int json_get<int>(const Json&, const char*, const std::string&);
template int64_t json_get<int64_t>(const Json&, const char*, const std::string&);
template double json_get<double>(const Json&, const char*, const std::string&);
template bool json_get<bool>(const Json&, const char*, const std::string&);
template std::string json_get<std::string>(const Json&, const char*, const std::string&);
template int json_get_or<int>(const Json&, const char*, int, const std::string&);
template int64_t json_get_or<int64_t>(const Json&, const char*, int64_t, const std::string&);
template double json_get_or<double>(const Json&, const char*, double, const std::string&);
template bool json_get_or<bool>(const Json&, const char*, bool, const std::string&);
template std::string json_get_or<std::string>(const Json&, const char*, std::string, const std::string&);

}  // namespace pmpd
