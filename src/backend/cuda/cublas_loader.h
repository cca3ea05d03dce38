// cuBLAS, loaded when a CUDA backend first needs it (dlopen), not linked: linking it makes every
// aero process, on a GPU or not, map and relocate cuBLAS and cuBLASLt at start, ~220 MB of
// resident memory before anything runs (which a disk-tier run under a memory cap cannot spare).
#pragma once

#include <cublas_v2.h>

namespace aero::backend::cuda {

struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  // (The C function: C++ also sees an inline overload taking a cudaDataType compute type.)
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, const void*,
                            cudaDataType, int, const void*, cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// The library's functions, loaded on the first call (thread-safe); throws aero::Error naming the
// library and what the loader said when it or a function is missing.
const Cublas& cublas();

}  // namespace aero::backend::cuda
