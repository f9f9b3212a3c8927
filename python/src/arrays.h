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

// A DLPack / buffer-protocol array over `view`'s memory that keeps `owner` alive. bfloat16 on the CPU is
// exported as uint16 (numpy cannot describe it); the Python layer views it as ml_dtypes.bfloat16.
nb::ndarray<nb::array_api> to_array(const TensorView& view, nb::handle owner);

}  // namespace pagedattn::python
