// Tensors: a non-owning TensorView (what every kernel entry point takes) and an owning Tensor.
// Strides are in elements, as in torch and DLPack.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>

#include "pagedattn/dtype.h"

namespace pagedattn {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  friend bool operator==(const Device&, const Device&) = default;
};

std::string to_string(Device device);

struct TensorView {
  static constexpr int kMaxDims = 6;

  void* data = nullptr;
  DType dtype = DType::f32;
  Device device{};
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};

  TensorView() = default;
  // A contiguous (row-major) view. Throws if there are more than kMaxDims dimensions.
  TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_, Device device_ = Device::cpu());
  TensorView(void* data_, DType dtype_, std::initializer_list<int64_t> shape_, Device device_ = Device::cpu())
      : TensorView(data_, dtype_, std::span<const int64_t>(shape_.begin(), shape_.size()), device_) {}
  // A strided view.
  TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_, std::span<const int64_t> strides_,
             Device device_ = Device::cpu());

  int64_t size(int dim) const { return shape[dim < 0 ? dim + ndim : dim]; }
  int64_t stride(int dim) const { return strides[dim < 0 ? dim + ndim : dim]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  std::span<const int64_t> sizes() const { return {shape.data(), static_cast<size_t>(ndim)}; }
  std::string shape_str() const;  // "[2, 16, 8, 128]"

  template <class T>
  T* data_as() const {
    return static_cast<T*>(data);
  }
};

// An owning, contiguous tensor on the CPU (64-byte aligned) or on a CUDA device.
class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(std::span<const int64_t> shape, DType dtype, Device device = Device::cpu());
  static Tensor empty(std::initializer_list<int64_t> shape, DType dtype, Device device = Device::cpu()) {
    return empty(std::span<const int64_t>(shape.begin(), shape.size()), dtype, device);
  }
  // Zero-filled (memset / cudaMemset).
  static Tensor zeros(std::span<const int64_t> shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(std::initializer_list<int64_t> shape, DType dtype, Device device = Device::cpu()) {
    return zeros(std::span<const int64_t>(shape.begin(), shape.size()), dtype, device);
  }

  const TensorView& view() const { return view_; }
  operator const TensorView&() const { return view_; }  // NOLINT: a Tensor is usable wherever a view is
  void* data() const { return view_.data; }
  template <class T>
  T* data_as() const {
    return view_.data_as<T>();
  }
  int64_t numel() const { return view_.numel(); }
  size_t nbytes() const { return view_.nbytes(); }
  int64_t size(int dim) const { return view_.size(dim); }
  DType dtype() const { return view_.dtype; }
  Device device() const { return view_.device; }

  // Copies into a new tensor on `device` (host<->device or same-device copy); blocking, like zeros(): the
  // data is in place on return, for work on any stream.
  Tensor to(Device device) const;

 private:
  std::shared_ptr<void> storage_;
  TensorView view_;
};

// Copies between two contiguous tensors of equal size and dtype on any devices.
void copy(const TensorView& dst, const TensorView& src);

// Whether a CUDA device is usable by this build (false in CPU-only builds or without a GPU).
bool cuda_available();

}  // namespace pagedattn
