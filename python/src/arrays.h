// Zero-copy conversion of any DLPack / buffer-protocol array (numpy, torch on CPU or CUDA) to a
// pagedattn::TensorView.
#pragma once

#include <nanobind/ndarray.h>

#include "pagedattn/tensor.h"

namespace pagedattn::python {

namespace nb = nanobind;

// Strides are taken as given (validation decides what it accepts). numpy has no bfloat16 of its own:
// the Python layer passes ml_dtypes bfloat16 arrays as uint16 views, so uint16 means bfloat16 here.
TensorView to_view(const nb::ndarray<>& array, const char* name);

}  // namespace pagedattn::python
