/* The bf16 compute roof: what the cores can do with the AVX512_BF16 dot
 * product (vdpbf16ps: 32 bf16 products summed pairwise into 16 fp32 lanes,
 * 64 FLOPs an instruction) from registers, with enough independent chains to
 * hide its latency. A kernel on bf16 operands is judged against it where the
 * instruction exists; where it does not, the best a bf16 kernel can do is
 * widen to fp32, so its roof is the FMA roof (fma_roof.h). */
#ifndef ATTN_BF16_ROOF_H
#define ATTN_BF16_ROOF_H

/* 1 when this CPU executes vdpbf16ps (checked at run time: the build may
 * target a wider family than the machine it runs on). */
int bf16_roof_available(void);

/* The reason a bf16 roof is missing, for NA cells: "" when available. */
const char *bf16_roof_missing(void);

/* One call of the probe on `threads` OpenMP threads, `iters` iterations each;
 * the FLOP count goes to *flops (0 and nothing run when unavailable).
 * Returns a value of the loop so it cannot be dropped. */
float bf16_roof_call(int threads, long iters, double *flops);

#endif
