#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/ggml_blocks.h"
#include "core/journal.h"
#include "io/gguf.h"

namespace pmpd {

namespace {

GgufValue scalar(GgufType t, auto v) {
  GgufValue g;
  g.type = t;
  g.v = v;
  return g;
}

class Out {
 public:
  explicit Out(std::ostream& f, size_t pos = 0) : f_(f), pos_(pos) {}
  template <typename T>
  void put(T v) {
    f_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void bytes(const void* p, size_t n) {
    f_.write(static_cast<const char*>(p), std::streamsize(n));
    pos_ += n;
  }
  void pad_to(size_t alignment) {
    static const char zeros[64] = {};
    while (pos_ % alignment) bytes(zeros, std::min<size_t>(alignment - pos_ % alignment, 64));
  }

 private:
  std::ostream& f_;
  size_t pos_ = 0;
};

void write_value(Out& o, const GgufValue& v) {
  switch (v.type) {
    case GgufType::U32: o.put<uint32_t>(uint32_t(std::get<uint64_t>(v.v))); break;
    case GgufType::I32: o.put<int32_t>(int32_t(std::get<int64_t>(v.v))); break;
    case GgufType::U64: o.put<uint64_t>(std::get<uint64_t>(v.v)); break;
    case GgufType::F32: o.put<float>(float(std::get<double>(v.v))); break;
    case GgufType::Bool: o.put<uint8_t>(std::get<bool>(v.v)); break;
    case GgufType::String: o.put_string(std::get<std::string>(v.v)); break;
    case GgufType::Array: {
      auto& items = std::get<std::vector<GgufValue>>(v.v);
      o.put<uint32_t>(uint32_t(v.elem_type));
      o.put<uint64_t>(items.size());
      for (auto& it : items) write_value(o, it);
      break;
    }
    default: fail("GGUF writer: unsupported value type {}", uint32_t(v.type));
  }
}

// U8 (bit planes) is stored as ggml's I8; block types keep their ggml ids.
uint32_t ggml_type_of(DType d) { return ggml_type_id(d == DType::U8 ? DType::I8 : d); }

}  // namespace

void GgufWriter::set_u32(const std::string& k, uint32_t v) { meta_.emplace_back(k, scalar(GgufType::U32, uint64_t(v))); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { meta_.emplace_back(k, scalar(GgufType::I32, int64_t(v))); }
void GgufWriter::set_f32(const std::string& k, float v) { meta_.emplace_back(k, scalar(GgufType::F32, double(v))); }
void GgufWriter::set_bool(const std::string& k, bool v) { meta_.emplace_back(k, scalar(GgufType::Bool, v)); }
void GgufWriter::set_string(const std::string& k, const std::string& v) { meta_.emplace_back(k, scalar(GgufType::String, v)); }
void GgufWriter::set(const std::string& k, const GgufValue& v) { meta_.emplace_back(k, v); }

namespace {
template <typename T, typename V>
GgufValue array_of(GgufType elem, const std::vector<T>& items, V (*convert)(const T&)) {
  GgufValue a;
  a.type = GgufType::Array;
  a.elem_type = elem;
  std::vector<GgufValue> out;
  out.reserve(items.size());
  for (auto& it : items) out.push_back(scalar(elem, convert(it)));
  a.v = std::move(out);
  return a;
}
}  // namespace

void GgufWriter::set_array_string(const std::string& k, const std::vector<std::string>& v) {
  meta_.emplace_back(k, array_of<std::string, std::string>(GgufType::String, v, [](const std::string& s) { return s; }));
}
void GgufWriter::set_array_f32(const std::string& k, const std::vector<float>& v) {
  meta_.emplace_back(k, array_of<float, double>(GgufType::F32, v, [](const float& f) { return double(f); }));
}
void GgufWriter::set_array_i32(const std::string& k, const std::vector<int32_t>& v) {
  meta_.emplace_back(k, array_of<int32_t, int64_t>(GgufType::I32, v, [](const int32_t& i) { return int64_t(i); }));
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                            const void* data) {
  tensors_.push_back({name, dtype, shape, data, {}});
}

void GgufWriter::add_tensor_lazy(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                 Producer produce) {
  tensors_.push_back({name, dtype, shape, nullptr, std::move(produce)});
}

void GgufWriter::set_resumable(std::string key, std::function<void(const std::vector<std::string>&)> on_resume) {
  resume_key_ = std::move(key);
  on_resume_ = std::move(on_resume);
}

void GgufWriter::write(const std::string& path, uint32_t alignment) const {
  // The header (metadata, tensor infos, offsets) first, in memory: a resumed write
  // compares it with the one already on disk.
  std::ostringstream hs;
  Out o(hs);
  o.put<uint32_t>(0x46554747);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(meta_.size() + 1);
  o.put_string("general.alignment");
  o.put<uint32_t>(uint32_t(GgufType::U32));
  o.put<uint32_t>(alignment);
  for (auto& [k, v] : meta_) {
    o.put_string(k);
    o.put<uint32_t>(uint32_t(v.type));
    write_value(o, v);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (auto& t : tensors_) {
    o.put_string(t.name);
    o.put<uint32_t>(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) o.put<uint64_t>(uint64_t(*it));
    o.put<uint32_t>(ggml_type_of(t.dtype));
    o.put<uint64_t>(offset);
    offsets.push_back(offset);
    TensorView v{t.name, t.dtype, t.shape, t.data};
    offset += (v.nbytes() + alignment - 1) / alignment * alignment;
  }
  o.pad_to(alignment);
  const std::string header = hs.str();

  const std::string tmp = path + ".tmp";
  std::optional<Journal> journal;
  std::fstream f;
  if (!resume_key_.empty()) {
    const std::string key = fmt::format("{}|header {:016x}", resume_key_, std::hash<std::string>{}(header));
    journal.emplace(tmp + ".journal", key);
    if (journal->resumed()) {
      f.open(tmp, std::ios::binary | std::ios::in | std::ios::out);
      std::string old(header.size(), '\0');
      if (!f || !f.read(old.data(), std::streamsize(old.size())) || old != header) {  // not the file the log describes
        f.close();
        journal->remove();
        journal.emplace(tmp + ".journal", key);
      }
    }
  }
  std::vector<bool> kept(tensors_.size(), false);
  if (journal && journal->resumed()) {
    std::vector<std::string> names;
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (journal->find(std::to_string(i))) kept[i] = true, names.push_back(tensors_[i].name);
    if (on_resume_) on_resume_(names);
  } else {
    f.open(tmp, std::ios::binary | std::ios::out | std::ios::trunc);
    if (!f) fail("{}: cannot write", tmp);
    f.write(header.data(), std::streamsize(header.size()));
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (kept[i]) continue;
    const Tensor& t = tensors_[i];
    TensorView v{t.name, t.dtype, t.shape, t.data};
    f.seekp(std::streamoff(header.size() + offsets[i]));
    Out d(f, header.size() + offsets[i]);
    if (t.data) {
      d.bytes(t.data, v.nbytes());
    } else {
      std::vector<uint8_t> buf(v.nbytes());
      t.produce(buf.data());
      d.bytes(buf.data(), buf.size());
    }
    d.pad_to(alignment);
    if (journal) {
      if (!f.flush()) fail("{}: write failed", tmp);
      journal->append(std::to_string(i), t.name);
    }
  }
  f.close();
  if (!f) fail("{}: write failed", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("{}: rename failed", path);
  if (journal) journal->remove();
}

}  // namespace pmpd
