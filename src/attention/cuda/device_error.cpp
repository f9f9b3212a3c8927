// Host side of the device error word: turns a record into the same message host validation would give,
// and the public check_cuda_errors / checked-mode switches.
#include <atomic>

#include "attention/cuda/device_error_storage.h"
#include "attention/cuda/scoped_device.h"
#include "core/check.h"
#include "pagedattn/attention.h"

namespace pagedattn {
namespace {

std::atomic<bool> g_checked{false};

std::string describe(const cuda::DeviceErrorRecord& r) {
  using cuda::DeviceErrorCode;
  switch (static_cast<DeviceErrorCode>(r.code)) {
    case DeviceErrorCode::block_id:
      return fmt::format("paged_attention: block_tables[{}][{}] = {}: expected a block id in [0, {})", r.seq,
                         r.index, r.value, r.limit);
    case DeviceErrorCode::context_len:
      return fmt::format(
          "paged_attention: context_lens[{}] = {}: expected a length in [1, {}] (a decode query needs one "
          "token; block_tables addresses at most {})",
          r.seq, r.value, r.limit, r.limit);
    case DeviceErrorCode::plan_mismatch:
      return fmt::format(
          "paged_attention: context_lens[{}] = {} on the device but the AttentionPlan was built for {} tokens: "
          "update the plan with this step's lengths",
          r.seq, r.value, r.limit);
    case DeviceErrorCode::slot:
      return fmt::format("write_kv: slot_mapping[{}] = {}: expected -1 or a slot in [0, {})", r.index, r.value,
                         r.limit);
    case DeviceErrorCode::none: break;
  }
  return fmt::format("a CUDA kernel recorded an unknown error code {}", r.code);
}

}  // namespace

namespace cuda {

void raise_device_error() {
  const DeviceErrorRecord record = take_device_error();
  if (record.code != 0) detail::fail(ErrorKind::invalid_argument, describe(record));
}

void finish_launch(cudaStream_t stream) {
  PA_CUDA_CHECK(cudaGetLastError());
  if (!g_checked.load(std::memory_order_relaxed)) return;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  PA_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;  // no synchronization inside a graph capture
  PA_CUDA_CHECK(cudaStreamSynchronize(stream));
  raise_device_error();
}

}  // namespace cuda

void check_cuda_errors(Device device) {
  PA_CHECK_ARG(device.is_cuda(), "check_cuda_errors: expected a CUDA device, got {}", to_string(device));
  cuda::ScopedDevice guard(device.index);
  PA_CUDA_CHECK(cudaDeviceSynchronize());
  cuda::raise_device_error();
}

void set_cuda_checked(bool on) { g_checked.store(on, std::memory_order_relaxed); }
bool cuda_checked() { return g_checked.load(std::memory_order_relaxed); }

}  // namespace pagedattn
