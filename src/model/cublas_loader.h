// cuBLAS, loaded the first time a GPU model needs it. Linking it made every start of a CUDA
// build, `pmpd --help` and CPU runs included, load and initialise libcublasLt: ~0.3 s and
// ~200 MB of resident memory before main (docs/results.md, "cuBLAS on first use").
#pragma once

#include <cublas_v2.h>

#include <string>

namespace pmpd::cuda {

// The cuBLAS entry points the CUDA backend calls (cublas_v2.h's names map to the _v2 symbols).
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  // cublasGemmEx is overloaded in C++ (a cudaDataType compute type): name the C one.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// The process's cuBLAS, opened on the first call (thread-safe); throws pmpd::Error naming the
// library and the loader's reason where it cannot be opened or lacks a symbol.
const CublasApi& cublas();

// Opens `library` (a file name the loader searches for, or a path) and resolves every entry
// point; throws as cublas() does. cublas() tries libcublas.so.<major of the headers built
// against>, then the same file in the toolkit's library folder found at build time.
CublasApi load_cublas(const std::string& library);

// Whether this process has cuBLAS mapped (read from /proc/self/maps; false where that is unreadable).
bool cublas_mapped();

}  // namespace pmpd::cuda
