// Bindings of paged_attention and write_kv. The Python layer (pagedattn/_ops.py) allocates `out`,
// picks the CUDA stream and handles numpy bfloat16; these functions only convert and call.
#include <nanobind/stl/optional.h>

#include "arrays.h"
#include "bindings.h"
#include "pagedattn/attention.h"

namespace pagedattn::python {

void bind_ops(nb::module_& m) {
  m.def(
      "paged_attention",
      [](nb::ndarray<> out, nb::ndarray<> query, nb::ndarray<> key_cache, nb::ndarray<> value_cache,
         nb::ndarray<> block_tables, nb::ndarray<> context_lens, std::optional<nb::ndarray<>> query_start,
         std::optional<float> scale, bool causal, uintptr_t stream) {
        PagedAttentionArgs a;
        a.query = to_view(query, "query");  // first: `out` usually derives from it
        a.out = to_view(out, "out");
        a.key_cache = to_view(key_cache, "key_cache");
        a.value_cache = to_view(value_cache, "value_cache");
        a.block_tables = to_view(block_tables, "block_tables");
        a.context_lens = to_view(context_lens, "context_lens");
        if (query_start) a.query_start = to_view(*query_start, "query_start");
        a.scale = scale;
        a.causal = causal;
        a.stream = reinterpret_cast<void*>(stream);
        nb::gil_scoped_release release;
        paged_attention(a);
      },
      nb::arg("out"), nb::arg("query"), nb::arg("key_cache"), nb::arg("value_cache"), nb::arg("block_tables"),
      nb::arg("context_lens"), nb::arg("query_start").none() = nb::none(), nb::arg("scale").none() = nb::none(),
      nb::arg("causal") = true, nb::arg("stream") = 0,
      "Low-level paged attention into `out` (see pagedattn.paged_attention).");

  m.def(
      "write_kv",
      [](nb::ndarray<> key, nb::ndarray<> value, nb::ndarray<> key_cache, nb::ndarray<> value_cache,
         nb::ndarray<> slot_mapping, uintptr_t stream) {
        WriteKvArgs a;
        a.key = to_view(key, "key");
        a.value = to_view(value, "value");
        a.key_cache = to_view(key_cache, "key_cache");
        a.value_cache = to_view(value_cache, "value_cache");
        a.slot_mapping = to_view(slot_mapping, "slot_mapping");
        a.stream = reinterpret_cast<void*>(stream);
        nb::gil_scoped_release release;
        write_kv(a);
      },
      nb::arg("key"), nb::arg("value"), nb::arg("key_cache"), nb::arg("value_cache"), nb::arg("slot_mapping"),
      nb::arg("stream") = 0, "Low-level write_kv (see pagedattn.write_kv).");
}

}  // namespace pagedattn::python
