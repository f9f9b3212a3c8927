// model_probe: prints what our GGUF reader and Llama forward compute, for the Python oracles to check.
//   model_probe dequant MODEL                 every tensor: u32 name length, name, u32 type, u32 rank,
//                                             i64 shape (row-major), f32 data; to stdout
//   model_probe dequant-raw TYPE N            N elements of ggml type TYPE from stdin -> f32 to stdout
//   model_probe forward MODEL OUT [--decode N] [--block-size S] [--kv-dtype f32|f16|bf16] --prompt 1,2,3 ...
//       prefills all prompts in one batched forward (logits of every row), then N greedy decode steps of all
//       sequences together; OUT: "PAPR", u32 sequences, u32 vocab, then per sequence u32 tokens, u32 prompt
//       length, i32 tokens[], f32 logits[tokens][vocab] (row i: the logits after token i)
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "paged_kv_for_tests.h"
#include "pagedattn/error.h"
#include "pagedattn/gguf.h"
#include "pagedattn/model.h"

using namespace pagedattn;

namespace {

template <class T>
void put(std::ostream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof(T));
}

int dequant(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  for (const GgufTensorInfo& t : file.tensors()) {
    const Tensor data = file.tensor_f32(t);
    put<uint32_t>(std::cout, static_cast<uint32_t>(t.name.size()));
    std::cout.write(t.name.data(), static_cast<std::streamsize>(t.name.size()));
    put<uint32_t>(std::cout, static_cast<uint32_t>(t.type));
    put<uint32_t>(std::cout, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.shape()) put<int64_t>(std::cout, d);
    std::cout.write(static_cast<const char*>(data.data()), static_cast<std::streamsize>(data.nbytes()));
  }
  std::cout.flush();
  return 0;
}

int dequant_raw(uint32_t type, int64_t n) {
  const auto gtype = static_cast<GgmlType>(type);
  std::vector<char> in(static_cast<size_t>(ggml_row_bytes(gtype, n)));
  std::cin.read(in.data(), static_cast<std::streamsize>(in.size()));
  if (std::cin.gcount() != static_cast<std::streamsize>(in.size())) {
    std::cerr << "model_probe: expected " << in.size() << " bytes on stdin\n";
    return 2;
  }
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(gtype, in.data(), out.data(), n);
  std::cout.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
  std::cout.flush();
  return 0;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    ids.push_back(std::stoi(s.substr(pos, end - pos)));
    pos = end + 1;
  }
  return ids;
}

int forward(int argc, char** argv) {
  const std::string model_path = argv[2];
  const std::string out_path = argv[3];
  int64_t decode_steps = 0;
  int64_t block_size = 16;
  DType kv_dtype = DType::f32;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--decode")
      decode_steps = std::stoll(value);
    else if (flag == "--block-size")
      block_size = std::stoll(value);
    else if (flag == "--prompt")
      prompts.push_back(parse_ids(value));
    else if (flag == "--kv-dtype")
      kv_dtype = value == "f16" ? DType::f16 : value == "bf16" ? DType::bf16 : DType::f32;
    else {
      std::cerr << "model_probe: unknown flag " << flag << "\n";
      return 2;
    }
  }
  const LlamaModel model = LlamaModel::load(model_path);
  const LlamaConfig& c = model.config();
  int64_t max_len = 0;
  for (const auto& p : prompts) max_len = std::max<int64_t>(max_len, static_cast<int64_t>(p.size()) + decode_steps);
  testing::PagedKvForTests kv(c, static_cast<int64_t>(prompts.size()), max_len, block_size, kv_dtype);

  std::vector<std::vector<int32_t>> tokens = prompts;
  std::vector<std::vector<float>> logits(prompts.size());
  const auto V = static_cast<size_t>(c.vocab_size);
  auto append_rows = [&](size_t seq, const Tensor& all, int64_t row, int64_t count) {
    const float* p = all.data_as<const float>() + row * c.vocab_size;
    logits[seq].insert(logits[seq].end(), p, p + count * c.vocab_size);
  };

  const auto prefill = kv.step(prompts);
  const std::vector<int32_t> rows = testing::all_rows(prefill.tokens.size());
  const Tensor out = model.forward(kv.args(prefill, rows));
  for (size_t b = 0; b < prompts.size(); ++b) {
    const int32_t begin = prefill.query_start.data_as<int32_t>()[b];
    append_rows(b, out, begin, static_cast<int64_t>(prompts[b].size()));
  }
  for (int64_t step = 0; step < decode_steps; ++step) {
    std::vector<std::vector<int32_t>> next(prompts.size());
    for (size_t b = 0; b < prompts.size(); ++b) {
      const float* last = logits[b].data() + logits[b].size() - V;
      const auto id = static_cast<int32_t>(std::max_element(last, last + V) - last);
      tokens[b].push_back(id);
      next[b] = {id};
    }
    const auto s = kv.step(next, /*varlen=*/false);
    const Tensor o = model.forward(kv.args(s, s.last_rows));
    for (size_t b = 0; b < prompts.size(); ++b) append_rows(b, o, static_cast<int64_t>(b), 1);
  }

  std::ofstream out_file(out_path, std::ios::binary | std::ios::trunc);
  out_file.write("PAPR", 4);
  put<uint32_t>(out_file, static_cast<uint32_t>(prompts.size()));
  put<uint32_t>(out_file, static_cast<uint32_t>(V));
  for (size_t b = 0; b < prompts.size(); ++b) {
    // Rows: one per prompt token, then one per decode step; the token sequence that produced them is the
    // prompt plus the first decode_steps greedy tokens.
    const size_t n = logits[b].size() / V;
    put<uint32_t>(out_file, static_cast<uint32_t>(n));
    put<uint32_t>(out_file, static_cast<uint32_t>(prompts[b].size()));
    out_file.write(reinterpret_cast<const char*>(tokens[b].data()), static_cast<std::streamsize>(n * 4));
    out_file.write(reinterpret_cast<const char*>(logits[b].data()), static_cast<std::streamsize>(logits[b].size() * 4));
  }
  return out_file.good() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "dequant" && argc == 3) return dequant(argv[2]);
    if (mode == "dequant-raw" && argc == 4)
      return dequant_raw(static_cast<uint32_t>(std::stoul(argv[2])), std::stoll(argv[3]));
    if (mode == "forward" && argc >= 4) return forward(argc, argv);
    std::cerr << "usage: model_probe dequant MODEL | dequant-raw TYPE N | forward MODEL OUT [--decode N] "
                 "[--block-size S] [--kv-dtype f32|f16|bf16] --prompt IDS...\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "model_probe: " << e.what() << "\n";
    return 1;
  }
}
