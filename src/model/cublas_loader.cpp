#include "model/cublas_loader.h"

#include <dlfcn.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace pmpd::cuda {

namespace {

template <class Fn>
void resolve(void* lib, const std::string& library, const char* symbol, Fn& fn) {
  dlerror();
  void* p = dlsym(lib, symbol);
  const char* why = dlerror();
  PMPD_CHECK(p != nullptr, "{} has no {} ({}); --backend cuda needs cuBLAS {}", library, symbol,
             why ? why : "a null symbol", CUBLAS_VER_MAJOR);
  fn = reinterpret_cast<Fn>(p);
}

std::string default_library() { return "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR); }

CublasApi load_default() {
  std::vector<std::string> tried{default_library()};
#ifdef PMPD_CUDA_LIBRARY_DIR
  tried.push_back(std::string(PMPD_CUDA_LIBRARY_DIR) + "/" + default_library());
#endif
  std::string reasons;
  for (const std::string& name : tried) {
    try {
      return load_cublas(name);
    } catch (const Error& e) {
      reasons += std::string(reasons.empty() ? "" : "; ") + e.what();
    }
  }
  throw Error(fmt::format("--backend cuda: cannot load cuBLAS: {} (set LD_LIBRARY_PATH to the CUDA toolkit's lib folder)",
                          reasons));
}

}  // namespace

CublasApi load_cublas(const std::string& library) {
  // Kept open for the process's life: the GPU models' handles outlive any one caller.
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    throw Error(fmt::format("{}: {}", library, why ? why : "not found"));
  }
  CublasApi api;
  resolve(lib, library, "cublasCreate_v2", api.create);
  resolve(lib, library, "cublasDestroy_v2", api.destroy);
  resolve(lib, library, "cublasSetStream_v2", api.set_stream);
  resolve(lib, library, "cublasSetWorkspace_v2", api.set_workspace);
  resolve(lib, library, "cublasSgemm_v2", api.sgemm);
  resolve(lib, library, "cublasGemmEx", api.gemm_ex);
  resolve(lib, library, "cublasGetStatusString", api.status_string);
  return api;
}

const CublasApi& cublas() {
  static const CublasApi api = load_default();  // a throw leaves it unset: the next call tries again
  return api;
}

bool cublas_mapped() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find("libcublas") != std::string::npos) return true;
  return false;
}

}  // namespace pmpd::cuda
