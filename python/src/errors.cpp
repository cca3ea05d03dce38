#include "errors.h"

namespace aero::python {

namespace py = pybind11;

namespace {

// An exception class with several bases (PyErr_NewExceptionWithDoc takes a tuple of them).
py::object new_exception(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  const std::string qualified = std::string("aero.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!type) throw py::error_already_set();
  auto object = py::reinterpret_steal<py::object>(type);
  m.attr(name) = object;
  return object;
}

}  // namespace

void register_errors(py::module_& m) {
  // Leaked on purpose: the translator below may run until the interpreter ends.
  static py::handle error, argument_error, not_found_error;
  error = new_exception(m, "Error", "An error aero reports: a bad file, a bad argument, a failed generation.",
                        py::make_tuple(py::handle(PyExc_RuntimeError)))
              .release();
  argument_error = new_exception(m, "ArgumentError", "A bad argument (also a ValueError).",
                                 py::make_tuple(error, py::handle(PyExc_ValueError)))
                       .release();
  not_found_error = new_exception(m, "NotFoundError", "A model that is not there (also a FileNotFoundError).",
                                  py::make_tuple(error, py::handle(PyExc_FileNotFoundError)))
                        .release();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ArgumentError& e) {
      PyErr_SetString(argument_error.ptr(), e.what());
    } catch (const NotFoundError& e) {
      PyErr_SetString(not_found_error.ptr(), e.what());
    } catch (const Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });
}

}  // namespace aero::python
