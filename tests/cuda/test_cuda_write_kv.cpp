// write_kv on CUDA against the reference: every cache byte equal afterwards (new rows in their slots,
// everything else untouched, slot -1 skipped), for vector and element-wise paths; bad slots reported.
#include <cstring>
#include <random>

#include "attention/reference.h"
#include "cuda_test_util.h"

namespace pagedattn::testing {
namespace {

class CudaWriteKv : public CudaTest {};

void expect_write_matches(DType dtype, int64_t num_blocks, int64_t bs, int64_t Hkv, int64_t D, int64_t T,
                          int64_t row_pad) {
  SCOPED_TRACE(std::string(dtype_name(dtype)) + " D=" + std::to_string(D) + " pad=" + std::to_string(row_pad));
  std::mt19937_64 rng(static_cast<uint64_t>(D * 31 + T));
  Tensor kc = Tensor::empty({num_blocks, bs, Hkv, D}, dtype), vc = Tensor::empty({num_blocks, bs, Hkv, D}, dtype);
  fill_uniform(kc, rng, -1, 1);
  fill_uniform(vc, rng, -1, 1);
  // key/value rows padded by row_pad elements (a strided view of a wider tensor).
  const int64_t width = Hkv * D + row_pad;
  Tensor kw = Tensor::empty({T, width}, dtype), vw = Tensor::empty({T, width}, dtype);
  fill_uniform(kw, rng, -1, 1);
  fill_uniform(vw, rng, -1, 1);
  Tensor slots = Tensor::empty({T}, DType::i32);
  std::vector<int32_t> all(static_cast<size_t>(num_blocks * bs));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  for (int64_t t = 0; t < T; ++t) slots.data_as<int32_t>()[t] = t % 5 == 3 ? -1 : all[t];

  const std::array<int64_t, 3> shape{T, Hkv, D}, strides{width, D, 1};
  const Tensor gkc = kc.to(Device::cuda()), gvc = vc.to(Device::cuda()), gkw = kw.to(Device::cuda()),
               gvw = vw.to(Device::cuda()), gslots = slots.to(Device::cuda());
  write_kv({.key = TensorView(gkw.data(), dtype, shape, strides, Device::cuda()),
            .value = TensorView(gvw.data(), dtype, shape, strides, Device::cuda()),
            .key_cache = gkc, .value_cache = gvc, .slot_mapping = gslots});
  reference::write_kv({.key = TensorView(kw.data(), dtype, shape, strides), .value = TensorView(vw.data(), dtype, shape, strides),
                       .key_cache = kc, .value_cache = vc, .slot_mapping = slots});
  const Tensor hk = gkc.to(Device::cpu()), hv = gvc.to(Device::cpu());
  EXPECT_EQ(std::memcmp(hk.data(), kc.data(), kc.nbytes()), 0);
  EXPECT_EQ(std::memcmp(hv.data(), vc.data(), vc.nbytes()), 0);
}

TEST_F(CudaWriteKv, MatchesReferenceBytewise) {
  for (DType dtype : {DType::bf16, DType::f16, DType::f32}) {
    expect_write_matches(dtype, 40, 16, 8, 128, 200, 0);   // 16-byte pieces
    expect_write_matches(dtype, 9, 1, 3, 64, 9, 8);        // block size 1, strided rows
    expect_write_matches(dtype, 4, 256, 2, 96, 300, 0);    // block size 256
    expect_write_matches(dtype, 7, 8, 2, 6, 40, 1);        // rows not 16-byte aligned: element-wise
  }
}

TEST_F(CudaWriteKv, BadSlotIsReportedAndSkipped) {
  const int64_t num_blocks = 4, bs = 16, Hkv = 2, D = 64;
  Tensor kc = Tensor::zeros({num_blocks, bs, Hkv, D}, DType::bf16, Device::cuda());
  Tensor vc = Tensor::zeros({num_blocks, bs, Hkv, D}, DType::bf16, Device::cuda());
  Tensor k = Tensor::zeros({3, Hkv, D}, DType::bf16, Device::cuda()), v = Tensor::zeros({3, Hkv, D}, DType::bf16, Device::cuda());
  Tensor slots = Tensor::empty({3}, DType::i32);
  const int32_t values[3] = {5, 64, -1};
  std::memcpy(slots.data(), values, sizeof(values));
  const Tensor gslots = slots.to(Device::cuda());
  try {
    write_kv({.key = k, .value = v, .key_cache = kc, .value_cache = vc, .slot_mapping = gslots});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "write_kv: slot_mapping[1] = 64: expected -1 or a slot in [0, 64)");
  }
}

}  // namespace
}  // namespace pagedattn::testing
