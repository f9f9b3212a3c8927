// Host access to the per-device error record (device_error.h). Private to the CUDA backend.
#pragma once

#include <cuda_runtime_api.h>

#include "attention/cuda/device_error.h"

namespace pagedattn::cuda {

// The record's device address on `device` (the current device must be `device`), for kernel arguments.
DeviceErrorRecord* device_error_record(int device);

// Reads and clears the current device's record. The caller synchronizes first.
DeviceErrorRecord take_device_error();

// After a launch on `stream`: throws on a launch error, and in checked mode (unless the
// stream is being captured into a graph) synchronizes the stream and raises any recorded device error.
void finish_launch(cudaStream_t stream);

// Throws the pagedattn::Error that a recorded device error stands for, if any (after a synchronization).
void raise_device_error();

}  // namespace pagedattn::cuda
