#include "attention/cuda/prefill.h"

#include <array>
#include <limits>

#include "core/check.h"
#include "core/cuda_check.h"

#ifndef PAGEDATTN_TUNE_VARLEN_FORK
#define PAGEDATTN_TUNE_VARLEN_FORK 0
#endif

namespace pagedattn::cuda {
namespace {

// The side stream of this host thread on one device, with its fork and join events. Per thread, so that
// calls from several threads never wait on each other's events.
struct SideStream {
  cudaStream_t stream = nullptr;
  cudaEvent_t fork = nullptr;
  cudaEvent_t join = nullptr;
  ~SideStream() {  // at thread exit; errors (a runtime already torn down) are of no use here
    if (stream) cudaStreamDestroy(stream);
    if (fork) cudaEventDestroy(fork);
    if (join) cudaEventDestroy(join);
  }
};

constexpr int kMaxDevices = 64;

SideStream& side_stream() {
  thread_local std::array<SideStream, kMaxDevices> streams;
  int device = 0;
  PA_CUDA_CHECK(cudaGetDevice(&device));
  PA_CHECK(device < kMaxDevices, ErrorKind::runtime, "paged_attention: CUDA device {} is past the {} supported", device,
           kMaxDevices);
  SideStream& s = streams[static_cast<size_t>(device)];
  if (s.stream == nullptr) {
    int least = 0, greatest = 0;  // the prefill's long CTAs should take free SMs before the decode's
    PA_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    PA_CUDA_CHECK(cudaStreamCreateWithPriority(&s.stream, cudaStreamNonBlocking, greatest));
    PA_CUDA_CHECK(cudaEventCreateWithFlags(&s.fork, cudaEventDisableTiming));
    PA_CUDA_CHECK(cudaEventCreateWithFlags(&s.join, cudaEventDisableTiming));
  }
  return s;
}

}  // namespace

void fork_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& args, const AttentionShape& shape,
                         cudaStream_t stream) {
  if (!PAGEDATTN_TUNE_VARLEN_FORK) {
    launch_varlen_prefill(launcher, args, shape, stream);
    return;
  }
  SideStream& side = side_stream();
  PA_CUDA_CHECK(cudaEventRecord(side.fork, stream));
  PA_CUDA_CHECK(cudaStreamWaitEvent(side.stream, side.fork, 0));
  launch_varlen_prefill(launcher, args, shape, side.stream);
  PA_CUDA_CHECK(cudaEventRecord(side.join, side.stream));
}

void join_varlen_prefill(cudaStream_t stream) {
  if (PAGEDATTN_TUNE_VARLEN_FORK) PA_CUDA_CHECK(cudaStreamWaitEvent(stream, side_stream().join, 0));
}

void launch_varlen_prefill(const PrefillLauncher& launcher, const PagedAttentionArgs& a, const AttentionShape& s,
                           cudaStream_t stream) {
  const char* op = "paged_attention";
  PA_CHECK_ARG(static_cast<bool>(launcher), "{}: head_dim {} has no CUDA prefill kernel: expected one of 64, 80, 96, 128, 256",
               op, s.head_dim);
  const int64_t group = s.group_size();
  const int64_t capacity = prefill_item_capacity(s.num_tokens, s.num_seqs, group, launcher.tile_rows);
  PA_CHECK_ARG(capacity * s.num_kv_heads <= std::numeric_limits<int32_t>::max() &&
                   s.num_tokens * group <= std::numeric_limits<int32_t>::max(),
               "{}: {} query rows x {} heads per KV head exceed the CUDA prefill kernel's int32 work indices", op,
               s.num_tokens, group);
  int device = 0;
  PA_CUDA_CHECK(cudaGetDevice(&device));
  PrefillParams p{};
  static_cast<PagedParams&>(p) = paged_params(a, s, device);
  p.causal = a.causal;

  // Scratch: items | num_items | next_unit.
  const size_t items_bytes = static_cast<size_t>(capacity) * sizeof(PrefillWorkItem);
  void* scratch = nullptr;
  PA_CUDA_CHECK(cudaMallocAsync(&scratch, items_bytes + 2 * sizeof(int32_t), stream));
  p.work.items = static_cast<PrefillWorkItem*>(scratch);
  p.work.num_items = reinterpret_cast<int32_t*>(static_cast<char*>(scratch) + items_bytes);
  p.work.next_unit = p.work.num_items + 1;

  PrefillTilesParams t{};
  t.query_start = p.query_start;
  t.context_lens = p.context_lens;
  t.num_seqs = static_cast<int32_t>(s.num_seqs);
  t.num_tokens = p.num_tokens;
  t.group_size = p.group_size;
  t.tile_rows = launcher.tile_rows;
  t.max_context_len = p.max_context_len;
  t.capacity = static_cast<int32_t>(capacity);
  t.work = p.work;
  t.error = p.error;
  launch_prefill_tiles(t, stream);

  int major = 0;
  PA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  launcher.launch(p, capacity * s.num_kv_heads, stream, /*pdl=*/major >= 9);
  PA_CUDA_CHECK(cudaFreeAsync(scratch, stream));
}

}  // namespace pagedattn::cuda
