/* Correctness gate before timing (SUITES.md 4.3): a benchmarked kernel's
 * output is compared with the double-precision oracle on a few sampled query
 * rows, so even N = 64K problems are checked without an O(N^2) oracle run. */
#ifndef ATTN_GATE_H
#define ATTN_GATE_H

#include "attn.h"

/* Max over sampled rows (first, middle, last query of up to 4 (b, h) heads)
 * of |O - O_ref| / max|V of that KV head|; also checks lse. *err = +inf when
 * an lse of -inf does not match. */
void attn_gate_sampled_rows(const attn_args *a, const attn_io *io, double *err);

#endif
