// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: instantiations of the decode kernel (matmul_gemv.cuh).
#include "backend/cuda/matmul_gemv.cuh"

namespace aero::backend::cuda::kernels {

cudaError_t gemv_q4_0(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ4_0>(p, stream); }
cudaError_t gemv_q4_1(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ4_1>(p, stream); }
cudaError_t gemv_q5_0(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ5_0>(p, stream); }
cudaError_t gemv_q5_1(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ5_1>(p, stream); }
cudaError_t gemv_q8_0(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FQ8_0>(p, stream); }

}  // namespace aero::backend::cuda::kernels
