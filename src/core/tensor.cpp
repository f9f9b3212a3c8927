#include "pagedattn/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/check.h"
#ifdef PAGEDATTN_WITH_CUDA
#include "core/cuda_check.h"
#endif

namespace pagedattn {

std::string to_string(Device device) {
  return device.is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", device.index);
}

TensorView::TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_, Device device_)
    : data(data_), dtype(dtype_), device(device_), ndim(static_cast<int>(shape_.size())) {
  PA_CHECK_ARG(shape_.size() <= kMaxDims, "tensor rank {} exceeds the maximum of {}", shape_.size(), kMaxDims);
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    shape[d] = shape_[d];
    strides[d] = stride;
    stride *= shape_[d];
  }
}

TensorView::TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_, std::span<const int64_t> strides_,
                       Device device_)
    : data(data_), dtype(dtype_), device(device_), ndim(static_cast<int>(shape_.size())) {
  PA_CHECK_ARG(shape_.size() <= kMaxDims, "tensor rank {} exceeds the maximum of {}", shape_.size(), kMaxDims);
  PA_CHECK_ARG(shape_.size() == strides_.size(), "tensor has {} sizes but {} strides", shape_.size(),
               strides_.size());
  for (int d = 0; d < ndim; ++d) {
    shape[d] = shape_[d];
    strides[d] = strides_[d];
  }
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

bool TensorView::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to address (numpy gives empty arrays zero strides)
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

std::string TensorView::shape_str() const { return fmt::format("[{}]", fmt::join(sizes(), ", ")); }

namespace {

std::shared_ptr<void> allocate(size_t nbytes, Device device) {
  if (device.is_cpu()) {
    constexpr size_t kAlign = 64;
    const size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
    PA_CHECK(p != nullptr, ErrorKind::out_of_memory, "cannot allocate {} bytes on the CPU", nbytes);
    return {p, [](void* q) { std::free(q); }};
  }
#ifdef PAGEDATTN_WITH_CUDA
  PA_CUDA_CHECK(cudaSetDevice(device.index));
  void* p = nullptr;
  PA_CUDA_CHECK(cudaMalloc(&p, nbytes == 0 ? 1 : nbytes));
  return {p, [](void* q) { cudaFree(q); }};
#else
  PA_CHECK_ARG(false, "cannot allocate on {}: pagedattn was built without CUDA", to_string(device));
#endif
}

#ifdef PAGEDATTN_WITH_CUDA
// cudaMemset returns before the memory is set, and cudaMemcpy from pageable host memory once the data is
// staged, not landed; both only order against the default stream. Waiting here makes zeros/to/copy
// blocking, so that kernels on any stream (non-blocking ones included) see the result: without it a
// benchmark on a busy GPU read query_start before its upload landed (bench/results/cuda_h200.md, run 27).
void wait_for_default_stream() { PA_CUDA_CHECK(cudaStreamSynchronize(nullptr)); }
#endif

}  // namespace

Tensor Tensor::empty(std::span<const int64_t> shape, DType dtype, Device device) {
  for (int64_t s : shape) PA_CHECK_ARG(s >= 0, "tensor sizes must be >= 0, got [{}]", fmt::join(shape, ", "));
  Tensor t;
  t.view_ = TensorView(nullptr, dtype, shape, device);
  t.storage_ = allocate(t.view_.nbytes(), device);
  t.view_.data = t.storage_.get();
  return t;
}

Tensor Tensor::zeros(std::span<const int64_t> shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cpu()) {
    std::memset(t.data(), 0, t.nbytes());
  } else {
#ifdef PAGEDATTN_WITH_CUDA
    PA_CUDA_CHECK(cudaMemset(t.data(), 0, t.nbytes()));
    wait_for_default_stream();
#endif
  }
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(view_.sizes(), view_.dtype, device);
  copy(t.view(), view_);
  return t;
}

void copy(const TensorView& dst, const TensorView& src) {
  PA_CHECK_ARG(dst.is_contiguous() && src.is_contiguous(), "copy: both tensors must be contiguous");
  PA_CHECK_TYPE(dst.dtype == src.dtype, "copy: dtype mismatch: destination {}, source {}", dtype_name(dst.dtype),
                dtype_name(src.dtype));
  PA_CHECK_ARG(dst.numel() == src.numel(), "copy: size mismatch: destination {} elements, source {}", dst.numel(),
               src.numel());
  if (dst.nbytes() == 0) return;
  if (dst.device.is_cpu() && src.device.is_cpu()) {
    std::memcpy(dst.data, src.data, dst.nbytes());
    return;
  }
#ifdef PAGEDATTN_WITH_CUDA
  PA_CUDA_CHECK(cudaMemcpy(dst.data, src.data, dst.nbytes(), cudaMemcpyDefault));
  wait_for_default_stream();
#else
  PA_CHECK_ARG(false, "copy: pagedattn was built without CUDA");
#endif
}

bool cuda_available() {
#ifdef PAGEDATTN_WITH_CUDA
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
#else
  return false;
#endif
}

}  // namespace pagedattn
