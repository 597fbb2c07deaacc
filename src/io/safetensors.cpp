#include "io/safetensors.h"

#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/json_file.h"

namespace pmpd {

namespace {

DType parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I8") return DType::I8;
  if (s == "U8") return DType::U8;
  if (s == "I16") return DType::I16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "F64") return DType::F64;
  return DType::Unknown;
}

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit is 100 MB

}  // namespace

void read_safetensors(const std::string& path, TensorSet& out) {
  auto file = MappedFile::open(path);
  PMPD_CHECK(file->size() >= 8, "{}: truncated safetensors file ({} bytes)", path, file->size());
  uint64_t header_len;
  std::memcpy(&header_len, file->data(), 8);
  PMPD_CHECK(header_len <= kMaxHeader && header_len <= file->size() - 8,
             "{}: corrupt safetensors header length {} (file has {} bytes)", path, header_len,
             file->size());
  std::string_view header(reinterpret_cast<const char*>(file->data()) + 8, header_len);
  Json j = parse_json_text(header, path + " (safetensors header)");
  PMPD_CHECK(j.is_object(), "{}: safetensors header is not a JSON object", path);
  const uint8_t* base = file->data() + 8 + header_len;
  const uint64_t data_len = file->size() - 8 - header_len;
  for (auto& [name, info] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string what = path + ": tensor " + name;
    PMPD_CHECK(info.is_object(), "{}: entry is not an object", what);
    DType dt = parse_dtype(json_get<std::string>(info, "dtype", what));
    PMPD_CHECK(dt != DType::Unknown, "{}: unsupported dtype {}", what, info["dtype"].dump());
    PMPD_CHECK(info.contains("shape") && info["shape"].is_array(), "{}: missing shape", what);
    PMPD_CHECK(info.contains("data_offsets") && info["data_offsets"].is_array() &&
                   info["data_offsets"].size() == 2,
               "{}: missing data_offsets", what);
    TensorView t;
    t.name = name;
    t.dtype = dt;
    uint64_t numel = 1;
    for (auto& d : info["shape"]) {
      PMPD_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                 "{}: bad dimension {}", what, d.dump());
      uint64_t v = d.get<uint64_t>();
      PMPD_CHECK(v == 0 || numel <= (uint64_t(1) << 48) / v, "{}: shape too large", what);
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    auto& offs = info["data_offsets"];
    PMPD_CHECK(offs[0].is_number_unsigned() && offs[1].is_number_unsigned(),
               "{}: bad data_offsets", what);
    uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
    PMPD_CHECK(b <= e && e <= data_len, "{}: data_offsets [{}, {}] outside the file's {} data bytes",
               what, b, e, data_len);
    PMPD_CHECK(e - b == numel * dtype_size(dt), "{}: {} bytes for shape {} of {} (expected {})", what,
               e - b, shape_str(t.shape), dtype_name(dt), numel * dtype_size(dt));
    t.data = base + b;
    PMPD_CHECK(!out.tensors.count(name), "{}: duplicate tensor name", what);
    out.tensors.emplace(name, std::move(t));
  }
  out.files.push_back(std::move(file));
}

void read_safetensors_index(const std::string& index_path, TensorSet& out) {
  Json j = parse_json_file(index_path);
  PMPD_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
             "{}: missing \"weight_map\"", index_path);
  std::set<std::string> shards;
  for (auto& [name, shard] : j["weight_map"].items()) {
    PMPD_CHECK(shard.is_string(), "{}: shard of {} is not a string", index_path, name);
    std::string s = shard.get<std::string>();
    PMPD_CHECK(s.find('/') == std::string::npos && s.find("..") == std::string::npos,
               "{}: shard name {} must be a file in the same directory", index_path, s);
    shards.insert(s);
  }
  auto dir = std::filesystem::path(index_path).parent_path();
  for (auto& s : shards) read_safetensors((dir / s).string(), out);
  for (auto& [name, shard] : j["weight_map"].items())
    PMPD_CHECK(out.tensors.count(name), "{}: tensor {} listed in the index is not in shard {}",
               index_path, name, shard.get<std::string>());
}

}  // namespace pmpd
