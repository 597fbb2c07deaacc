// An owning device allocation (the model's weights and buffers, the diagnostics' scratch):
// grows, never shrinks; out of memory is a pmpd::Error naming the size, never a crash.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace pmpd::cuda {

template <typename T>
class DevArray {
 public:
  DevArray() = default;
  explicit DevArray(size_t n) { reserve(n); }
  ~DevArray() {
    if (p_) cudaFree(p_);
  }
  DevArray(DevArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DevArray& operator=(DevArray&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  void reserve(size_t n) {
    if (n <= n_) return;
    if (p_) cudaFree(p_);
    p_ = nullptr, n_ = 0;
    if (cudaMalloc(&p_, n * sizeof(T)) != cudaSuccess) {
      cudaGetLastError();
      cuda_out_of_memory(n * sizeof(T));
    }
    n_ = n;
  }
  void upload(const T* src, size_t n, size_t offset = 0) {
    PMPD_CUDA_CHECK(cudaMemcpy(p_ + offset, src, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace pmpd::cuda
