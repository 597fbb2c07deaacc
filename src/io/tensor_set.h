// A named set of tensors read from one or more files, kept mapped while in use.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace pmpd {

struct TensorSet {
  std::vector<std::shared_ptr<MappedFile>> files;           // keep mappings alive
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned;  // tensors made at load
  std::map<std::string, TensorView> tensors;
  std::string source;  // file or directory, for error messages

  const TensorView* find(const std::string& name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
};

}  // namespace pmpd
