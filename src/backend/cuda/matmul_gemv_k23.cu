// Q2_K, Q3_K: instantiations of the decode kernel (matmul_gemv.cuh).
#include "backend/cuda/matmul_gemv.cuh"

namespace aero::backend::cuda::kernels {

cudaError_t gemv_q2_k(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ2_K>(p, stream); }
cudaError_t gemv_q3_k(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ3_K>(p, stream); }

}  // namespace aero::backend::cuda::kernels
