// aero._aero: the bindings the Python package (python/aero) is written over.
#include "bindings.h"
#include "errors.h"

PYBIND11_MODULE(_aero, m) {
  m.doc() = "aero's library for Python: model files, state dicts and generation (use the `aero` package).";
  aero::python::register_errors(m);
  aero::python::bind_source(m);
  aero::python::bind_engine(m);
}
