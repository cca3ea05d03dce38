// The parts of the extension module aero._aero, each binding one concern.
#pragma once

#include <pybind11/pybind11.h>

namespace aero::python {

void bind_source(pybind11::module_& m);  // Source: tensors, metadata, state dicts
void bind_engine(pybind11::module_& m);  // Engine, Stream: generation

}  // namespace aero::python
