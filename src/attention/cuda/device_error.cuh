// Device side of the error word (device_error.h): one atomicCAS claims the record, so concurrent CTAs
// that find bad metadata cannot tear it.
#pragma once

#include "attention/cuda/device_error.h"

namespace pagedattn::cuda {

__device__ inline void record_device_error(DeviceErrorRecord* record, DeviceErrorCode code, int seq, int index,
                                           int value, long long limit) {
  if (atomicCAS(&record->code, 0, static_cast<int>(code)) == 0) {
    record->seq = seq;
    record->index = index;
    record->value = value;
    record->limit = limit;
  }
}

}  // namespace pagedattn::cuda
