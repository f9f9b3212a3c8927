// KvCache and AttentionMetadataBuffers with their memory on a CUDA device: copy-on-write moves the block on
// every layer (one strided device copy) and nothing else, and the metadata lands on the device intact.
// Skipped where no GPU is usable.
#include <numeric>
#include <vector>

#include "kv/kv_testing.h"
#include "pagedattn/kv_cache.h"

using namespace pagedattn;

namespace {

std::vector<uint16_t> to_host_u16(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  const auto* p = host.data_as<const uint16_t>();
  return {p, p + host.nbytes() / 2};
}

std::vector<int32_t> to_host_i32(const TensorView& t) {
  Tensor host = Tensor::empty(t.sizes(), DType::i32);
  copy(host, t);
  const auto* p = host.data_as<const int32_t>();
  return {p, p + host.numel()};
}

}  // namespace

TEST(KvCacheCuda, CopyOnWriteCopiesTheBlockOnEveryLayerOfDeviceMemory) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  KvCache cache({.num_blocks = 5, .block_size = 4, .num_layers = 3, .num_kv_heads = 2, .head_dim = 8,
                 .dtype = DType::f16, .device = Device::cuda(0)});
  ASSERT_TRUE(cache.key(2).device.is_cuda());
  // Give every 16-bit element of the whole allocation a distinct value.
  Tensor pattern = Tensor::empty({static_cast<int64_t>(cache.memory().nbytes() / 2)}, DType::f16);
  std::iota(pattern.data_as<uint16_t>(), pattern.data_as<uint16_t>() + pattern.numel(), uint16_t{0});
  copy(TensorView(cache.memory().data(), DType::f16, {pattern.numel()}, Device::cuda(0)), pattern);
  const std::vector<uint16_t> before = to_host_u16(cache.memory());

  const SeqId parent = cache.add_sequence();
  ASSERT_TRUE(cache.append(parent, 6));  // blocks 0, 1
  const SeqId child = cache.fork(parent);
  ASSERT_TRUE(cache.append(child, 1));  // copies block 1 to block 2
  ASSERT_EQ(cache.manager().block_table(child)[1], 2);
  const std::vector<uint16_t> after = to_host_u16(cache.memory());

  const size_t block = 4 * 2 * 8;  // elements of one block of one layer's K (or V)
  const size_t plane = 5 * block;
  for (size_t i = 0; i < after.size(); ++i) {
    const size_t offset = i % plane;
    const bool in_block_2 = offset >= 2 * block && offset < 3 * block;
    const uint16_t expected = in_block_2 ? before[i - block] : before[i];  // block 2 now holds block 1
    ASSERT_EQ(after[i], expected) << "element " << i << " (plane " << i / plane << ")";
  }
}

TEST(KvCacheCuda, MetadataBuffersUploadTheBatch) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  KvCacheManager m(8, 4);
  const SeqId a = m.add_sequence();
  const SeqId b = m.add_sequence();
  ASSERT_TRUE(m.append(a, 9));
  ASSERT_TRUE(m.append(b, 2));
  const std::vector<ScheduledSeq> batch{{a, 3}, {b, 2}};
  AttentionMetadataBuffers buffers(4, 32, 3, Device::cuda(0));
  const AttentionMetadataView v = buffers.build(m, batch);
  const AttentionMetadata host = build_attention_metadata(m, batch);
  ASSERT_TRUE(v.block_tables.device.is_cuda());
  const std::vector<int32_t> host_tables(host.block_tables.data_as<const int32_t>(),
                                         host.block_tables.data_as<const int32_t>() + host.block_tables.numel());
  EXPECT_EQ(to_host_i32(v.block_tables), host_tables);  // both 3 wide here
  EXPECT_EQ(to_host_i32(v.context_lens), std::vector<int32_t>({9, 2}));
  EXPECT_EQ(to_host_i32(v.query_start), std::vector<int32_t>({0, 3, 5}));
  EXPECT_EQ(to_host_i32(v.slot_mapping), std::vector<int32_t>({6, 7, 8, 12, 13}));
}
