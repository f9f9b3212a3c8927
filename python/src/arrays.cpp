#include "arrays.h"

#include <vector>

#include "core/check.h"

namespace pagedattn::python {
namespace {

DType to_dtype(nb::dlpack::dtype t, const char* name) {
  using code = nb::dlpack::dtype_code;
  PA_CHECK_TYPE(t.lanes == 1, "{}: vector dtypes (lanes {}) are not supported", name, t.lanes);
  const auto c = static_cast<code>(t.code);
  if (c == code::Float && t.bits == 32) return DType::f32;
  if (c == code::Float && t.bits == 16) return DType::f16;
  if (c == code::Float && t.bits == 64) return DType::f64;
  if (c == code::Bfloat && t.bits == 16) return DType::bf16;
  if (c == code::UInt && t.bits == 16) return DType::bf16;  // numpy bfloat16 (ml_dtypes) viewed as uint16
  if (c == code::Int && t.bits == 32) return DType::i32;
  if (c == code::Int && t.bits == 64) return DType::i64;
  if (c == code::UInt && t.bits == 8) return DType::u8;
  const char* kind = c == code::Int ? "int" : c == code::UInt ? "uint" : c == code::Float ? "float"
                   : c == code::Bool ? "bool" : c == code::Complex ? "complex" : "other";
  PA_CHECK_TYPE(false, "{}: unsupported dtype {}{}", name, kind, t.bits);
}

Device to_device(int type, int id, const char* name) {
  if (type == nb::device::cpu::value) return Device::cpu();
  if (type == nb::device::cuda::value) return Device::cuda(id);
  PA_CHECK_ARG(false, "{}: unsupported device type {} (DLPack code); expected a CPU or CUDA array", name, type);
}

}  // namespace

TensorView to_view(const nb::ndarray<>& a, const char* name) {
  PA_CHECK_ARG(a.ndim() <= static_cast<size_t>(TensorView::kMaxDims), "{}: rank {} exceeds the maximum of {}", name,
               a.ndim(), TensorView::kMaxDims);
  TensorView v;
  v.data = a.data();
  v.dtype = to_dtype(a.dtype(), name);
  v.device = to_device(a.device_type(), a.device_id(), name);
  v.ndim = static_cast<int>(a.ndim());
  int64_t contiguous = 1;
  for (int d = v.ndim - 1; d >= 0; --d) {
    v.shape[d] = static_cast<int64_t>(a.shape(d));
    v.strides[d] = a.stride_ptr() ? a.stride(d) : contiguous;
    contiguous *= v.shape[d];
  }
  return v;
}

nb::ndarray<nb::array_api> to_array(const TensorView& v, nb::handle owner) {
  nb::dlpack::dtype dt{};
  dt.lanes = 1;
  dt.bits = static_cast<uint8_t>(dtype_size(v.dtype) * 8);
  switch (v.dtype) {
    case DType::f32:
    case DType::f16:
    case DType::f64: dt.code = static_cast<uint8_t>(nb::dlpack::dtype_code::Float); break;
    case DType::bf16:
      dt.code = static_cast<uint8_t>(v.device.is_cpu() ? nb::dlpack::dtype_code::UInt : nb::dlpack::dtype_code::Bfloat);
      break;
    case DType::i32:
    case DType::i64: dt.code = static_cast<uint8_t>(nb::dlpack::dtype_code::Int); break;
    case DType::u8: dt.code = static_cast<uint8_t>(nb::dlpack::dtype_code::UInt); break;
  }
  std::vector<size_t> shape(v.sizes().begin(), v.sizes().end());
  return nb::ndarray<nb::array_api>(v.data, shape.size(), shape.data(), owner, v.strides.data(), dt,
                       v.device.is_cpu() ? nb::device::cpu::value : nb::device::cuda::value, v.device.index);
}

}  // namespace pagedattn::python
