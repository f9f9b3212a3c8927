// The FMA peak of one core, measured: the yardstick of bench_kernel_compute.
#pragma once

namespace pagedattn::bench {

// f32 multiply-adds per second of the calling thread at the FMA pipes' peak, on the widest instruction set
// the CPU kernel's dispatch picks (the same Highway targets); the fastest of a few timed runs.
double fma_peak_multiply_adds_per_second();

}  // namespace pagedattn::bench
