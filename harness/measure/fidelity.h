/* Fidelity of a kernel against softmax attention (docs/fidelity.md): how far
 * an approximate kernel's output is from the double-precision oracle's on the
 * same inputs, on input families that flatter or punish different kinds of
 * approximation. Measured on sampled rows of sampled heads, so a 16K-key
 * problem costs a few hundred oracle rows, not an O(N^2) oracle run. */
#ifndef ATTN_FIDELITY_H
#define ATTN_FIDELITY_H

#include "kernels/core/attn.h"

/* Input families of Q, K and V (V is N(0,1) in every family but uniform):
 * uniform   U(-1,1), the harness's default inputs (no fidelity report);
 * gaussian  N(0,1): logits N(0,1) at the default scale, near-uniform attention
 *           (flatters low-rank and feature-map methods);
 * lowrank   q, k in one shared random 8-dimensional subspace plus 0.05 noise;
 * peaked    each query has 1-4 planted keys whose logits stand 6-10 above its
 *           row (the rest spread about 1-2): the needle regime where sparse and
 *           routing methods should win and feature maps lose;
 * longtail  keys with Pareto(3) norms: each row's logits have a power-law
 *           tail, a few keys dominate many rows. */
typedef enum { FID_UNIFORM = 0, FID_GAUSSIAN, FID_LOWRANK, FID_PEAKED, FID_LONGTAIL, FID__COUNT } fid_inputs;

extern const char *const fid_inputs_names[]; /* by value, NULL-terminated */

/* Overwrites Q, K and V of a problem (views of any strides) with family f
 * drawn from seed; uniform leaves them as they are. The mask decides which
 * keys a peaked query may plant on (those it may attend). */
void fid_fill(fid_inputs f, const attn_args *a, uint64_t seed, const attn_io *io);

/* Sampled query rows per head and the k of top-k key recall. */
#define FID_ROWS 64
#define FID_TOPK 16

/* What fid_measure reports; NAN where a measure does not apply, with the
 * reason in *_na. */
typedef struct {
    double rel_fro;          /* ||O - O_ref||_F / ||O_ref||_F over the sampled rows */
    double cos_mean, cos_min; /* cosine of each sampled O row with the oracle's */
    double kl;               /* mean KL(P_ref || P) of the kernel's attention rows (floored 1e-12, renormalised) */
    double topk_recall;      /* mean share of the oracle's FID_TOPK largest keys the kernel selects */
    char kl_na[96], topk_na[96];
    int64_t rows;            /* sampled rows measured */
} fid_metrics;

/* The measures by name, in the order rows and reports give them (the CSV's
 * metric values), and their values in that order (NAN where NA). */
#define FID_MEASURES 5
extern const char *const fid_measure_names[FID_MEASURES];
void fid_metrics_values(const fid_metrics *m, double v[FID_MEASURES]);

/* Compares io->o, the kernel's output on the problem (a, io), with the oracle
 * on FID_ROWS rows of up to 4 heads; the kernel's ref_view gives its rows and
 * selected keys. Returns 0, or the negative code of a failing ref_view. */
int fid_measure(const attn_kernel *k, const attn_args *a, const attn_io *io, fid_metrics *m);

#endif
