// Bindings of KvCache and its step metadata. Arrays handed out are views of the C++ memory that keep
// their owner alive; pagedattn/kv_cache.py turns them into numpy arrays or torch tensors.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "arrays.h"
#include "bindings.h"
#include "core/check.h"
#include "pagedattn/kv_cache.h"

namespace pagedattn::python {
namespace {

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "float16") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  PA_CHECK_TYPE(false, "KvCache: dtype must be 'float32', 'float16' or 'bfloat16', got '{}'", name);
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  if (name.rfind("cuda:", 0) == 0) {
    const std::string index = name.substr(5);
    PA_CHECK_ARG(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos && index.size() < 4,
                 "KvCache: device must be 'cpu', 'cuda' or 'cuda:N', got '{}'", name);
    return Device::cuda(std::stoi(index));
  }
  PA_CHECK_ARG(false, "KvCache: device must be 'cpu', 'cuda' or 'cuda:N', got '{}'", name);
}

KvCacheConfig make_config(int32_t num_blocks, int32_t block_size, int32_t num_layers, int32_t num_kv_heads,
                          int32_t head_dim, const std::string& dtype, const std::string& device, bool prefix_caching) {
  KvCacheConfig c;
  c.num_blocks = num_blocks;
  c.block_size = block_size;
  c.num_layers = num_layers;
  c.num_kv_heads = num_kv_heads;
  c.head_dim = head_dim;
  c.dtype = parse_dtype(dtype);
  c.device = parse_device(device);
  c.prefix_caching = prefix_caching;
  return c;
}

std::vector<ScheduledSeq> schedule(const std::vector<SeqId>& seqs, const std::vector<int64_t>& num_new_tokens) {
  PA_CHECK_ARG(seqs.size() == num_new_tokens.size(),
               "KvCache.metadata: seq_ids has {} entries but num_new_tokens has {}", seqs.size(), num_new_tokens.size());
  std::vector<ScheduledSeq> batch;
  for (size_t i = 0; i < seqs.size(); ++i) batch.push_back({seqs[i], num_new_tokens[i]});
  return batch;
}

std::optional<nb::ndarray<nb::numpy, int32_t>> slots_array(std::optional<std::vector<int32_t>> slots) {
  if (!slots) return std::nullopt;
  auto* owned = new std::vector<int32_t>(std::move(*slots));
  nb::capsule free_it(owned, [](void* p) noexcept { delete static_cast<std::vector<int32_t>*>(p); });
  return nb::ndarray<nb::numpy, int32_t>(owned->data(), {owned->size()}, free_it);
}

}  // namespace

void bind_kv_cache(nb::module_& m) {
  nb::class_<AttentionMetadata>(m, "_AttentionMetadata")
      .def_prop_ro("block_tables", [](nb::handle self) { return to_array(nb::cast<AttentionMetadata&>(self).block_tables, self); })
      .def_prop_ro("context_lens", [](nb::handle self) { return to_array(nb::cast<AttentionMetadata&>(self).context_lens, self); })
      .def_prop_ro("query_start", [](nb::handle self) { return to_array(nb::cast<AttentionMetadata&>(self).query_start, self); })
      .def_prop_ro("slot_mapping", [](nb::handle self) { return to_array(nb::cast<AttentionMetadata&>(self).slot_mapping, self); });

  nb::class_<KvCache>(m, "_KvCache")
      .def(nb::new_([](int32_t num_blocks, int32_t block_size, int32_t num_layers, int32_t num_kv_heads,
                       int32_t head_dim, const std::string& dtype, const std::string& device, bool prefix_caching) {
             return new KvCache(make_config(num_blocks, block_size, num_layers, num_kv_heads, head_dim, dtype, device,
                                            prefix_caching));
           }),
           nb::arg("num_blocks"), nb::arg("block_size"), nb::arg("num_layers"), nb::arg("num_kv_heads"),
           nb::arg("head_dim"), nb::arg("dtype"), nb::arg("device"), nb::arg("prefix_caching"))
      .def_static(
          "num_blocks_for_budget",
          [](size_t budget_bytes, int32_t block_size, int32_t num_layers, int32_t num_kv_heads, int32_t head_dim,
             const std::string& dtype) {
            return KvCache::num_blocks_for_budget(
                make_config(1, block_size, num_layers, num_kv_heads, head_dim, dtype, "cpu", true), budget_bytes);
          },
          nb::arg("budget_bytes"), nb::arg("block_size"), nb::arg("num_layers"), nb::arg("num_kv_heads"),
          nb::arg("head_dim"), nb::arg("dtype"))
      .def("key", [](nb::handle self, int32_t layer) { return to_array(nb::cast<KvCache&>(self).key(layer), self); })
      .def("value", [](nb::handle self, int32_t layer) { return to_array(nb::cast<KvCache&>(self).value(layer), self); })
      .def("add_sequence", &KvCache::add_sequence)
      .def("append_count", [](KvCache& c, SeqId seq, int64_t n) { return slots_array(c.append(seq, n)); })
      .def("append_tokens",
           [](KvCache& c, SeqId seq, const std::vector<TokenId>& tokens) { return slots_array(c.append(seq, tokens)); })
      .def("attach_cached_prefix",
           [](KvCache& c, SeqId seq, const std::vector<TokenId>& prompt) { return c.attach_cached_prefix(seq, prompt); })
      .def("fork", &KvCache::fork)
      .def("rewind", &KvCache::rewind)
      .def("release", &KvCache::release)
      .def("num_tokens", [](const KvCache& c, SeqId seq) { return c.manager().num_tokens(seq); })
      .def("block_table", [](const KvCache& c, SeqId seq) {
        auto t = c.manager().block_table(seq);
        return std::vector<BlockId>(t.begin(), t.end());
      })
      .def("contains", [](const KvCache& c, SeqId seq) { return c.manager().contains(seq); })
      .def_prop_ro("num_sequences", [](const KvCache& c) { return c.manager().num_sequences(); })
      .def_prop_ro("num_free_blocks", [](const KvCache& c) { return c.manager().num_available_blocks(); })
      .def("check_invariants", [](const KvCache& c) { c.manager().check_invariants(); })
      .def("metadata", [](const KvCache& c, const std::vector<SeqId>& seqs, const std::vector<int64_t>& num_new) {
        const std::vector<ScheduledSeq> batch = schedule(seqs, num_new);
        AttentionMetadata md = c.metadata(batch);
        return c.config().device.is_cpu() ? md : md.to(c.config().device);
      })
      .def("set_stream", [](KvCache& c, uintptr_t stream) { c.set_stream(reinterpret_cast<void*>(stream)); });
}

}  // namespace pagedattn::python
