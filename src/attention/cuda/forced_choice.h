// Environment variables that force a choice the CUDA launchers otherwise make (PAGEDATTN_PREFILL_WGMMA,
// PAGEDATTN_DECODE_CTAS_PER_SM, PAGEDATTN_DECODE_PREFETCH), for benchmarks and tests. Host code only.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace pagedattn::cuda {

// The single digit in [lo, hi] that the environment variable `name` holds, or -1 when it is unset or empty.
// Another value is reported on stderr and ignored (-1). Callers keep the result in a static: read once.
inline int forced_choice(const char* name, int lo, int hi) {
  const char* env = std::getenv(name);
  if (env == nullptr || env[0] == 0) return -1;
  if (env[0] >= '0' + lo && env[0] <= '0' + hi && env[1] == 0) return env[0] - '0';
  std::fprintf(stderr, "pagedattn: ignoring %s=%s (expected a digit from %d to %d)\n", name, env, lo, hi);
  return -1;
}

}  // namespace pagedattn::cuda
