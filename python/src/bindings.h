// Each part of the extension binds itself onto the module.
#pragma once

#include <nanobind/nanobind.h>

namespace pagedattn::python {
namespace nb = nanobind;
void bind_ops(nb::module_& m);
void bind_kv_cache(nb::module_& m);
}  // namespace pagedattn::python
