// The Highway targets that every SIMD file of pagedattn (and the benchmarks that measure against them) is
// compiled for; include it before any Highway header. Fixed-width targets only: the kernels size their
// position tiles and reduction trees at compile time. SSSE3 is left out (SSE4 and the scalar fallback cover
// such old machines) to keep the builds short.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV | HWY_SSSE3)
#endif
