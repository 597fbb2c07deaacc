#include <cstring>

#include "core/error.h"
#include "core/ggml_blocks.h"
#include "io/gguf.h"

namespace pmpd {

int64_t GgufValue::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v)) return int64_t(*u);
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* b = std::get_if<bool>(&v)) return *b;
  throw Error("GGUF value is not an integer");
}
double GgufValue::as_float() const {
  if (auto* d = std::get_if<double>(&v)) return *d;
  return double(as_int());
}
const std::string& GgufValue::as_string() const {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  throw Error("GGUF value is not a string");
}
const std::vector<GgufValue>& GgufValue::as_array() const {
  if (auto* a = std::get_if<std::vector<GgufValue>>(&v)) return *a;
  throw Error("GGUF value is not an array");
}

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian

// Bounds-checked little-endian reader over the mapped file.
class Cursor {
 public:
  Cursor(const MappedFile& f) : f_(f) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return f_.size() - pos_; }
  void need(size_t n, const char* what) const {
    PMPD_CHECK(n <= remaining(), "{}: truncated GGUF file while reading {} (offset {})", f_.path(),
               what, pos_);
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, f_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(f_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const MappedFile& f_;
  size_t pos_ = 0;
};

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, const std::string& path,
                     int depth) {
  GgufValue out;
  out.type = type;
  const char* what = "metadata value";
  switch (type) {
    case GgufType::U8: out.v = uint64_t(c.read<uint8_t>(what)); break;
    case GgufType::I8: out.v = int64_t(c.read<int8_t>(what)); break;
    case GgufType::U16: out.v = uint64_t(c.read<uint16_t>(what)); break;
    case GgufType::I16: out.v = int64_t(c.read<int16_t>(what)); break;
    case GgufType::U32: out.v = uint64_t(c.read<uint32_t>(what)); break;
    case GgufType::I32: out.v = int64_t(c.read<int32_t>(what)); break;
    case GgufType::U64: out.v = c.read<uint64_t>(what); break;
    case GgufType::I64: out.v = c.read<int64_t>(what); break;
    case GgufType::F32: out.v = double(c.read<float>(what)); break;
    case GgufType::F64: out.v = c.read<double>(what); break;
    case GgufType::Bool: {
      uint8_t b = c.read<uint8_t>(what);
      PMPD_CHECK(b <= 1, "{}: key {}: bool value {}", path, key, b);
      out.v = b != 0;
      break;
    }
    case GgufType::String: out.v = c.read_string(what); break;
    case GgufType::Array: {
      PMPD_CHECK(depth == 0, "{}: key {}: nested arrays are not supported", path, key);
      out.elem_type = GgufType(c.read<uint32_t>("array type"));
      uint64_t n = c.read<uint64_t>("array length");
      // every element takes at least one byte: a larger count is a corrupt file
      PMPD_CHECK(n <= c.remaining(), "{}: key {}: array of {} elements exceeds the file", path, key, n);
      std::vector<GgufValue> items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, out.elem_type, key, path, 1));
      out.v = std::move(items);
      break;
    }
    default: fail("{}: key {}: unknown GGUF value type {}", path, key, uint32_t(type));
  }
  return out;
}

}  // namespace

GgufFile read_gguf(const std::string& path) {
  GgufFile g;
  auto file = MappedFile::open(path);
  Cursor c(*file);
  uint32_t magic = c.read<uint32_t>("magic");
  PMPD_CHECK(magic == kMagic, "{}: not a GGUF file (bad magic)", path);
  g.version = c.read<uint32_t>("version");
  PMPD_CHECK(g.version == 2 || g.version == 3, "{}: GGUF version {} is not supported (need 2 or 3)",
             path, g.version);
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  PMPD_CHECK(n_tensors <= c.remaining() / 24 && n_kv <= c.remaining() / 12,
             "{}: corrupt GGUF header ({} tensors, {} keys)", path, n_tensors, n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    auto type = GgufType(c.read<uint32_t>("metadata type"));
    g.meta[key] = read_value(c, type, key, path, 0);
  }
  if (auto* a = g.find("general.alignment")) {
    int64_t al = a->as_int();
    PMPD_CHECK(al > 0 && al <= 65536 && (al & (al - 1)) == 0, "{}: bad general.alignment {}", path, al);
    g.alignment = uint32_t(al);
  }
  struct Info {
    TensorView t;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info info;
    info.t.name = c.read_string("tensor name");
    uint32_t n_dims = c.read<uint32_t>("tensor dims");
    PMPD_CHECK(n_dims >= 1 && n_dims <= 4, "{}: tensor {} has {} dimensions", path, info.t.name, n_dims);
    std::vector<int64_t> ne(n_dims);
    uint64_t numel = 1;
    for (auto& d : ne) {
      uint64_t v = c.read<uint64_t>("tensor dim");
      PMPD_CHECK(v <= (uint64_t(1) << 40) && (v == 0 || numel <= (uint64_t(1) << 48) / v),
                 "{}: tensor {} has an impossible shape", path, info.t.name);
      numel *= v;
      d = int64_t(v);
    }
    info.t.shape.assign(ne.rbegin(), ne.rend());  // GGUF lists the innermost dim first
    uint32_t type = c.read<uint32_t>("tensor type");
    info.t.dtype = dtype_from_ggml_type(type);
    PMPD_CHECK(info.t.dtype != DType::Unknown,
               "{}: tensor {} has ggml type {} ({}), which pmpd does not read (F32, F16, BF16, Q4_0, Q4_1, "
               "Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K; llama.cpp's llama-quantize --allow-requantize can rewrite it "
               "as Q8_0 or F16)",
               path, info.t.name, ggml_type_name(type), type);
    PMPD_CHECK(info.t.shape.back() % block_elems(info.t.dtype) == 0,
               "{}: tensor {} is {} with rows of {} elements, not a whole number of its {}-element blocks", path,
               info.t.name, dtype_name(info.t.dtype), info.t.shape.back(), block_elems(info.t.dtype));
    info.offset = c.read<uint64_t>("tensor offset");
    infos.push_back(std::move(info));
  }
  size_t data_start = (c.pos() + g.alignment - 1) / g.alignment * g.alignment;
  PMPD_CHECK(data_start <= file->size(), "{}: truncated GGUF file (no tensor data)", path);
  const uint64_t data_len = file->size() - data_start;
  for (auto& info : infos) {
    uint64_t n = info.t.nbytes();
    PMPD_CHECK(info.offset % g.alignment == 0, "{}: tensor {} is not aligned", path, info.t.name);
    PMPD_CHECK(info.offset <= data_len && n <= data_len - info.offset,
               "{}: tensor {} ({} bytes at offset {}) lies outside the file", path, info.t.name, n,
               info.offset);
    info.t.data = file->data() + data_start + info.offset;
    PMPD_CHECK(!g.tensors.tensors.count(info.t.name), "{}: duplicate tensor {}", path, info.t.name);
    g.tensors.tensors.emplace(info.t.name, std::move(info.t));
  }
  g.tensors.source = path;
  g.tensors.files.push_back(std::move(file));
  return g;
}

}  // namespace pmpd
