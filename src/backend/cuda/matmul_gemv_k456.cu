// Q4_K, Q5_K, Q6_K: instantiations of the decode kernel (matmul_gemv.cuh).
#include "backend/cuda/matmul_gemv.cuh"

namespace aero::backend::cuda::kernels {

cudaError_t gemv_q4_k(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ4_K>(p, stream); }
cudaError_t gemv_q5_k(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ5_K>(p, stream); }
cudaError_t gemv_q6_k(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ6_K>(p, stream); }

}  // namespace aero::backend::cuda::kernels
