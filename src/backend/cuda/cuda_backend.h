// The CUDA backend's entry points for backend/device.cpp (compiled only with AERO_HAVE_CUDA).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aero/backend/backend.h"

namespace aero::backend::cuda {

// GPUs the runtime sees; 0 with `why` set ("no CUDA driver", "no CUDA GPU") when none. Never
// throws and creates no context, so `--device auto` costs nothing on a machine without a GPU.
int device_count(std::string& why);

// Every GPU with its free memory (this creates each GPU's primary context); when there is
// none, `why` says why.
std::vector<GpuInfo> list_gpus(std::string& why);

// backend::probe_host_copies on GPU `index` (zeros when it cannot run; never throws).
HostCopyProbe probe_host_copies(int index, const std::function<double()>& cpu_pass);

// A backend on GPU `index` (which device_count() has seen). Throws aero::Error when the GPU
// cannot be used.
std::unique_ptr<Backend> make_cuda_backend(int index, unsigned threads);

}  // namespace aero::backend::cuda
