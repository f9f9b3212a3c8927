// The _pagedattn extension: pagedattn::Error becomes ValueError / TypeError / MemoryError /
// RuntimeError by its kind, with the C++ message.
#include "bindings.h"
#include "pagedattn/error.h"
#include "pagedattn/tensor.h"

NB_MODULE(_pagedattn, m) {
  namespace nb = nanobind;
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const pagedattn::Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case pagedattn::ErrorKind::invalid_argument: type = PyExc_ValueError; break;
        case pagedattn::ErrorKind::type_error: type = PyExc_TypeError; break;
        case pagedattn::ErrorKind::out_of_memory: type = PyExc_MemoryError; break;
        case pagedattn::ErrorKind::runtime: type = PyExc_RuntimeError; break;
      }
      PyErr_SetString(type, e.what());
    }
  });
  m.def("cuda_available", &pagedattn::cuda_available, "Whether this build has CUDA and a GPU is visible.");
  pagedattn::python::bind_ops(m);
  pagedattn::python::bind_kv_cache(m);
}
