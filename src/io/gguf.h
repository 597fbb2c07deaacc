// GGUF version 3 (llama.cpp's container): header, typed key/value metadata, tensor
// infos, then aligned tensor data. We read tensors in place (mmap; llama.cpp's block types
// too, core/ggml_blocks.h) and write files that llama.cpp's gguf-py also reads.
// docs/format.md has the layout.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "io/tensor_set.h"

namespace pmpd {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8,
  Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U32;  // for arrays
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v;

  bool is_int() const { return v.index() == 0 || v.index() == 1; }
  int64_t as_int() const;  // throws if not an integer
  double as_float() const;
  const std::string& as_string() const;
  const std::vector<GgufValue>& as_array() const;
};

struct GgufFile {
  uint32_t version = 3;
  uint32_t alignment = 32;
  std::map<std::string, GgufValue> meta;
  TensorSet tensors;

  const GgufValue* find(const std::string& key) const {
    auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  }
};

GgufFile read_gguf(const std::string& path);

// Builds a GGUF file: add metadata and tensors, then write (atomically).
class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set(const std::string& key, const GgufValue& v);  // any value, e.g. one read_gguf gave
  // `data` must stay valid until write(); shape is row-major (outermost first).
  void add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                  const void* data);
  // A tensor whose bytes are made only when write() reaches it: `produce` fills a buffer
  // of exactly the tensor's size, which is written and freed at once. Lets a quantizer
  // stream a model through memory one tensor at a time.
  using Producer = std::function<void(uint8_t* dst)>;
  void add_tensor_lazy(const std::string& name, DType dtype, const std::vector<int64_t>& shape, Producer produce);
  void write(const std::string& path, uint32_t alignment = 32) const;
  // Makes write() resumable: each finished tensor is logged (PATH.tmp.journal) and a
  // later write with the same key and the same header keeps the tensors an interrupted
  // one finished, producing only the rest. `key` must name what the tensors' bytes depend
  // on beyond the header (the source file's version). on_resume gets the kept tensors'
  // names before anything is produced.
  void set_resumable(std::string key, std::function<void(const std::vector<std::string>&)> on_resume = {});

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;
    Producer produce;  // used when data is null
  };
  std::vector<std::pair<std::string, GgufValue>> meta_;
  std::vector<Tensor> tensors_;
  std::string resume_key_;
  std::function<void(const std::vector<std::string>&)> on_resume_;
};

}  // namespace pmpd
