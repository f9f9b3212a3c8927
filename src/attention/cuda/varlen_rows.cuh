// A sequence's query rows in a varlen call, read from metadata on the device and checked before any of it
// becomes an address: query_start must be non-decreasing within [0, num_tokens] and each sequence's
// context must hold its rows and fit the block table. Shared by the work-list builder and the kernels
// (decode included: decode_row).
#pragma once

#include <cstdint>

#include "attention/cuda/device_error.cuh"

namespace pagedattn::cuda {

struct SeqRows {
  int first_row;    // query_start[seq]
  int q_len;        // 0 when the metadata is bad: nothing of the sequence is computed
  int context_len;  // tokens in the cache, this step's rows included
};

// `report`: record a bad value in the device error word (one caller per sequence is enough).
__device__ inline SeqRows load_seq_rows(const int32_t* query_start, const int32_t* context_lens, int seq,
                                        int num_tokens, int max_context_len, DeviceErrorRecord* error, bool report) {
  const int q0 = query_start[seq], q1 = query_start[seq + 1], len = context_lens[seq];
  if (q0 < 0 || q0 > num_tokens) {
    if (report) record_device_error(error, DeviceErrorCode::query_start, seq, seq, q0, num_tokens);
    return {0, 0, 0};
  }
  if (q1 < q0 || q1 > num_tokens) {
    if (report) record_device_error(error, DeviceErrorCode::query_start, seq, seq + 1, q1, num_tokens);
    return {0, 0, 0};
  }
  if (len < q1 - q0 || len > max_context_len) {
    if (report) record_device_error(error, DeviceErrorCode::varlen_context, seq, q1 - q0, len, max_context_len);
    return {0, 0, 0};
  }
  return {q0, q1 - q0, len};
}

// The output row of sequence `seq` for the decode kernels, or -1 when it is not a decode row of this
// call: in a varlen call, a sequence without exactly one valid row (the prefill side checks and reports
// query_start). query_start == nullptr: a decode call, row `seq`.
__device__ inline int decode_row(const int32_t* query_start, int num_tokens, int seq) {
  if (query_start == nullptr) return seq;
  const int q0 = query_start[seq], q1 = query_start[seq + 1];
  return q1 - q0 == 1 && q0 >= 0 && q1 <= num_tokens ? q0 : -1;
}

}  // namespace pagedattn::cuda
