/* The compute roof: what the cores can do when nothing but fused multiply-adds
 * run, from registers, with enough independent chains to hide the FMA latency.
 * No kernel can exceed it; the bench gate refuses rows that claim to. */
#ifndef ATTN_FMA_ROOF_H
#define ATTN_FMA_ROOF_H

/* The vector path the build uses, as chosen for the kernels (-march=native):
 * "avx512", "avx2" or "scalar". */
const char *fma_roof_isa(void);

/* One call of the probe: every one of `threads` OpenMP threads runs `iters`
 * iterations of the register-only loop; its FLOP count (2 per lane per FMA)
 * goes to *flops. Returns a value of the loop so it cannot be dropped. */
float fma_roof_call(int threads, long iters, double *flops);

#endif
