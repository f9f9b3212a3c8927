// The device error word: kernels that read metadata already on the GPU (block tables, context lengths,
// slot mappings) check every value before using it as an address, record the first bad one here and go
// on without touching memory out of bounds. The host turns the record into a pagedattn::Error when it
// next synchronizes (check_cuda_errors) or at once in checked mode (set_cuda_checked). Host and device.
#pragma once

#include <cstdint>

namespace pagedattn::cuda {

enum class DeviceErrorCode : int {
  none = 0,
  block_id = 1,       // block_tables[seq][index] = value, outside [0, limit)
  context_len = 2,    // context_lens[seq] = value, outside [1, limit] (limit: tokens the table can address)
  plan_mismatch = 3,  // context_lens[seq] = value, but the AttentionPlan was built for limit tokens
  slot = 4,           // slot_mapping[index] = value, outside [-1, limit)
};

struct DeviceErrorRecord {
  int code;  // a DeviceErrorCode; claimed with atomicCAS, so the first error recorded wins
  int seq;
  int index;
  int value;
  long long limit;
};

}  // namespace pagedattn::cuda
