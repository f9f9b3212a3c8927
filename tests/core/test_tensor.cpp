#include <gtest/gtest.h>

#include <vector>

#include "pagedattn/error.h"
#include "pagedattn/tensor.h"

using namespace pagedattn;

TEST(TensorView, ContiguousStridesAndShape) {
  float data[24];
  TensorView v(data, DType::f32, {2, 3, 4});
  EXPECT_EQ(v.ndim, 3);
  EXPECT_EQ(v.numel(), 24);
  EXPECT_EQ(v.nbytes(), 96u);
  EXPECT_EQ(v.stride(0), 12);
  EXPECT_EQ(v.stride(-1), 1);
  EXPECT_EQ(v.size(-2), 3);
  EXPECT_TRUE(v.is_contiguous());
  EXPECT_EQ(v.shape_str(), "[2, 3, 4]");
}

TEST(TensorView, StridedViewIsNotContiguous) {
  float data[24];
  const int64_t shape[] = {2, 3}, strides[] = {12, 4};
  TensorView v(data, DType::f32, shape, strides);
  EXPECT_FALSE(v.is_contiguous());
  const int64_t unit_shape[] = {1, 3}, any_stride[] = {999, 1};
  EXPECT_TRUE(TensorView(data, DType::f32, unit_shape, any_stride).is_contiguous());  // size-1 dims don't count
}

TEST(TensorView, RejectsTooManyDimensions) {
  const std::vector<int64_t> shape(TensorView::kMaxDims + 1, 1);
  try {
    TensorView v(nullptr, DType::f32, shape);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("rank 7 exceeds the maximum of 6"), std::string::npos) << e.what();
  }
}

TEST(Tensor, EmptyZerosAndCopy) {
  Tensor z = Tensor::zeros({4, 5}, DType::bf16);
  EXPECT_EQ(z.nbytes(), 40u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.data()) % 64, 0u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(z.data_as<bf16>()[i].bits, 0);
  Tensor a = Tensor::empty({3}, DType::i32);
  for (int i = 0; i < 3; ++i) a.data_as<int32_t>()[i] = i * 7;
  Tensor b = a.to(Device::cpu());
  EXPECT_NE(a.data(), b.data());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.data_as<int32_t>()[i], i * 7);
  Tensor zero_size = Tensor::empty({0, 8}, DType::f32);
  EXPECT_EQ(zero_size.numel(), 0);
}

TEST(Tensor, RejectsNegativeSizesAndMismatchedCopies) {
  EXPECT_THROW(Tensor::empty({2, -1}, DType::f32), Error);
  Tensor a = Tensor::empty({3}, DType::f32), b = Tensor::empty({4}, DType::f32), c = Tensor::empty({3}, DType::i32);
  EXPECT_THROW(copy(a, b), Error);
  try {
    copy(a, c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::type_error);
  }
}

TEST(Tensor, CudaAllocationFailsClearlyWithoutCuda) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Tensor::empty({4}, DType::f32, Device::cuda()), Error);
}
