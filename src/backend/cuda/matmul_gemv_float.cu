// F32, F16, BF16: instantiations of the decode kernel (matmul_gemv.cuh).
#include "backend/cuda/matmul_gemv.cuh"

namespace aero::backend::cuda::kernels {

cudaError_t gemv_f32(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FF32>(p, stream); }
cudaError_t gemv_f16(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FF16>(p, stream); }
cudaError_t gemv_bf16(const GemvLaunch& p, cudaStream_t stream) { return gemv_detail::launch_format<dev::FBF16>(p, stream); }

}  // namespace aero::backend::cuda::kernels
