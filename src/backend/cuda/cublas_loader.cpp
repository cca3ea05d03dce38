#include "backend/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <type_traits>

#include "aero/error.h"

#ifndef AERO_CUBLAS_SONAME
#define AERO_CUBLAS_SONAME "libcublas.so"
#endif

namespace aero::backend::cuda {
namespace {

Cublas load() {
  // (Never closed: the functions are used until the process ends.)
  void* lib = dlopen(AERO_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!lib) fail("CUDA: cannot load cuBLAS ({}): {}", AERO_CUBLAS_SONAME, dlerror());
  auto find = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) fail("CUDA: {} has no {}", AERO_CUBLAS_SONAME, name);
  };
  Cublas c;
  find(c.create, "cublasCreate_v2");
  find(c.destroy, "cublasDestroy_v2");
  find(c.set_stream, "cublasSetStream_v2");
  find(c.set_workspace, "cublasSetWorkspace_v2");
  find(c.gemm_ex, "cublasGemmEx");
  find(c.status_string, "cublasGetStatusString");
  return c;
}

}  // namespace

const Cublas& cublas() {
  static const Cublas loaded = load();  // a throw leaves it to be tried again by the next call
  return loaded;
}

}  // namespace aero::backend::cuda
