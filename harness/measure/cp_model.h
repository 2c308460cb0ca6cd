/* A cost model of the context-parallel kernels `ring` and `ulysses`
 * (docs/scale-out.md, "The cost model"): from a link's latency and bandwidth
 * (fitted to a ping-pong probe) and `flash`'s measured rate on blocks of a
 * few sizes, the forward time of either kernel on P ranks and its efficiency
 * against `flash` on one rank. Plain arithmetic, no MPI: the probe that
 * feeds it is harness/mpi/cp_probe.c, the command `attnbench cpmodel`.
 *
 * Ring: P steps; each computes the rank's share of the pairs, N-pairs / P^2
 * (zigzag chunks give every rank and step the same causal share), while the
 * next K/V block (2 B H_kv (N/P) D floats) crosses one link; a step lasts the
 * longer of the two, the last step sends nothing.
 * Ulysses: the local attention on H/P heads (N-pairs / P of the work) after
 * and before two all-to-alls, each (P-1) messages in turn on one link:
 * 2 (P-1) latencies plus the bytes the volume formula gives over the
 * bandwidth; nothing overlaps. */
#ifndef ATTN_CP_MODEL_H
#define ATTN_CP_MODEL_H

#include <stdint.h>

typedef enum { CPM_RING = 0, CPM_ULYSSES } cpm_kind;

#define CPM_RATES_MAX 8

/* The machine: one link and flash's forward rate (useful FLOP/s) at a few
 * block sizes (rows of a square block; increasing). Between two sizes the
 * rate is interpolated in log(rows); outside them the nearest is used. One
 * size: the same rate everywhere. bandwidth may be INFINITY. */
typedef struct {
    double latency_s, bandwidth_Bps;
    int n_rates;
    double rows[CPM_RATES_MAX], flops_per_s[CPM_RATES_MAX];
} cpm_machine;

/* The problem: self-attention of N positions, full or causal mask, split over P ranks. */
typedef struct {
    cpm_kind kind;
    int64_t B, H, H_kv, N, D;
    int causal;
    int64_t P;
} cpm_problem;

typedef enum { CPM_COMPUTE_BOUND = 0, CPM_BANDWIDTH_BOUND, CPM_LATENCY_BOUND } cpm_bound;

typedef struct {
    int feasible;        /* 0: the kernel cannot split this problem (why says so) */
    char why[96];
    double one_rank_s;   /* flash on the whole problem on one rank */
    double compute_s;    /* the compute of one rank, all steps */
    double comm_s;       /* the communication of one rank, all messages */
    double exposed_s;    /* communication compute does not hide */
    double time_s;       /* compute_s + exposed_s */
    double efficiency;   /* one_rank_s / (P time_s) */
    double overlap;      /* 1 - exposed / comm (NaN without communication) */
    double bytes;        /* sent by one rank */
    cpm_bound bound;     /* what the time is limited by */
} cpm_prediction;

extern const char *const cpm_kind_names[];  /* "ring", "ulysses" */
extern const char *const cpm_bound_names[]; /* "compute", "bandwidth", "latency" */

/* flash's rate for square blocks of `rows` rows (see cpm_machine). */
double cpm_rate(const cpm_machine *m, double rows);

/* Forward FLOPs of the problem's attention: 4 B H D per allowed pair. */
double cpm_flops(const cpm_problem *p);

/* The prediction of *p on *m; 0, or ATTN_EINVAL for a machine without a
 * rate or a problem with a non-positive size (feasibility is in *out). */
int cpm_predict(const cpm_machine *m, const cpm_problem *p, cpm_prediction *out);

/* Bytes one rank sends in one pass (backward: 0 forward, 1 backward), the
 * volume formulas of docs/scale-out.md (kernels/cp counts against them). */
double cpm_bytes_per_rank(const cpm_problem *p, int backward);

/* Least-squares fit of t = latency + bytes / bandwidth to n >= 2 one-way
 * times, each weighted by 1/t^2 (relative error, so the small messages fix
 * the latency and the large ones the bandwidth). A negative intercept (a
 * latency below the fit's noise) is taken as 0; a slope that is not
 * positive (no measurable bandwidth) is an error naming the fit. */
int cpm_fit_link(const double *bytes, const double *seconds, int n, double *latency_s, double *bandwidth_Bps);

#endif
