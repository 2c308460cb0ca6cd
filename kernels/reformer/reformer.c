/* `reformer`: LSH attention (Kitaev, Kaiser, Levskaya 2020;
 * docs/kernels/reformer.md): parameters, plan, cost model and the kernel
 * object. The math is in reformer_internal.h, the forward in
 * reformer_fwd.c, the backward in reformer_bwd.c, the double reference in
 * reformer_ref.c. */
#include "reformer.h"

#include <string.h>

static const opt_def rf_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = 64, .lo = 1, .hi = 1 << 20,
     .help = "c: rows per chunk of the sorted sequence; a query attends its own and the previous chunk"},
    {.name = "buckets", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 24,
     .help = "nb: 0 = 2 max(1, floor(L/c)) (paper, trax; factored above 128), 1 = one bucket, else even"},
    {.name = "rounds", .type = OPT_INT, .def = 4, .lo = 1, .hi = RF_ROUNDS_MAX,
     .help = "hash rounds, combined by logsumexp"},
    {.name = "seed", .type = OPT_UINT, .def = 1, .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_RECORDED,
     .help = "seed of the random rotations (drawn per head and round)"},
    {.name = "same_bucket", .type = OPT_BOOL, .def = 1,
     .help = "1: mask keys of other buckets inside the two chunks (paper); 0: attend them (trax's current code)"},
    {0},
};

int rf_plan_make(rf_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "reformer", rf_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->c = attn_param_int(a, rf_params, "chunk", &rc);
    pl->nb = attn_param_int(a, rf_params, "buckets", &rc);
    pl->rounds = (int)attn_param_int(a, rf_params, "rounds", &rc);
    pl->seed = (uint64_t)attn_param_int(a, rf_params, "seed", &rc);
    pl->same_bucket = (int)attn_param_int(a, rf_params, "same_bucket", &rc);
    if (rc)
        return rc;
    if (pl->nb > 1 && pl->nb % 2)
        return attn_fail(ATTN_EINVAL, "kernel 'reformer': buckets is the width of [xR, -xR], expected 0 (auto), 1 "
                                      "or an even number, found %lld", (long long)pl->nb);
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    pl->shift = a->q_off - a->k_off;
    return 0;
}

rf_hash_shape rf_hash_of(const rf_plan *pl, int64_t L)
{
    if (pl->nb == 1)
        return (rf_hash_shape){.nb = 1, .f1 = 1, .f2 = 1, .cols = 0};
    int64_t n = pl->nb ? pl->nb : 2 * (L / pl->c > 1 ? L / pl->c : 1);
    if (pl->nb || n <= 128) /* a given count, or a small one: one factor */
        return (rf_hash_shape){.nb = n, .f1 = n, .f2 = 1, .cols = n / 2};
    /* trax: f1 the power of two at or above sqrt(n), f2 the even rest */
    int64_t f1 = 2;
    while (f1 * f1 < n)
        f1 *= 2;
    int64_t f2 = 2 * (n / (2 * f1));
    return (rf_hash_shape){.nb = f1 * f2, .f1 = f1, .f2 = f2, .cols = f1 / 2 + f2 / 2};
}

static int rf_init(attn_ctx *ctx, const attn_args *a)
{
    rf_layout ly;
    int rc = rf_layout_make(&ly, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = rf_workspace_bytes(&ly, a);
    return 0;
}

/* ---- cost model (docs/kernels/reformer.md) ---- */

/* Chunk products of one round over L rows, per unit of (D + Dv): the
 * sum over chunks of 2 nq nk (nq queries, nk = nq + rows of the previous
 * chunk, which is the chunk itself when there is one). */
static double rf_chunk_pairs(const rf_plan *pl, int64_t L)
{
    int64_t nc = rf_chunks(pl, L);
    double f = 0;
    for (int64_t k = 0; k < nc; k++) {
        int64_t nq = L - k * pl->c < pl->c ? L - k * pl->c : pl->c, prev = (k + nc - 1) % nc;
        int64_t np = nc > 1 ? (L - prev * pl->c < pl->c ? L - prev * pl->c : pl->c) : 0;
        f += 2.0 * (double)nq * (double)(nq + np);
    }
    return f;
}

/* Forward per head and round: 2 L D cols for the hash projection (L D nb
 * with one factor, none with one bucket) plus 2 nq nk (D + Dv) per chunk; backward: the hashes again plus
 * 2 nq nk (3 D + 2 Dv) per chunk (scores, dP, dQ, dK, dV: 2.5x the chunk
 * products when Dv = D). Causal masking skips no chunk product. */
static double rf_flops(const attn_args *a, attn_pass pass)
{
    rf_plan pl;
    if (rf_plan_make(&pl, a) != 0)
        return 0;
    double D = (double)a->D, Dv = (double)attn_dv(a), f = 0;
    for (int64_t b = 0; b < a->B; b++) {
        int64_t L = rf_len(a, b);
        double hash = 2.0 * (double)L * D * (double)rf_hash_of(&pl, L).cols, pairs = rf_chunk_pairs(&pl, L);
        f += hash + pairs * (pass == ATTN_PASS_FWD ? D + Dv : 3 * D + 2 * Dv);
    }
    return f * (double)pl.rounds * (double)a->H;
}

/* Minimum traffic, fp32, real rows: forward reads Q and V (K is not read),
 * writes O and lse; backward reads Q, V, O, dO, lse and writes dQ, dK (zero)
 * and dV. */
static double rf_bytes(const attn_args *a, attn_pass pass)
{
    double D = (double)a->D, Dv = (double)attn_dv(a), H = (double)a->H, Hk = (double)a->H_kv, rows = 0;
    for (int64_t b = 0; b < a->B; b++)
        rows += (double)rf_len(a, b);
    double fwd = H * D + Hk * Dv + H * Dv + H;
    double bwd = H * D + Hk * Dv + 2 * H * Dv + H + H * D + Hk * D + Hk * Dv;
    return 4.0 * rows * (pass == ATTN_PASS_FWD ? fwd : bwd);
}

/* The keys (normalised queries, one set per query head) and the values a
 * step of decoding would keep: a KV cache of N (D H + Dv H_kv) floats. */
static size_t rf_state_bytes(const attn_args *a)
{
    size_t rows = 0;
    for (int64_t b = 0; b < a->B; b++)
        rows += (size_t)rf_len(a, b);
    return sizeof(float) * rows * (size_t)(a->D * a->H + attn_dv(a) * a->H_kv);
}

int rf_forward(attn_ctx *ctx, const attn_io *io);

const attn_kernel attn_kernel_reformer = {
    .name = "reformer",
    .family = "reformer",
    .reference = "Kitaev, Kaiser, Levskaya 2020 (Reformer: The Efficient Transformer)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC | ATTN_PADDED |
             ATTN_ROUTED | ATTN_SHARED_QK,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = rf_params,
    .notes = "shared QK: keys q/|q|, K not read (dK = 0); self only when alone; rounds combined as one softmax over "
             "the union of candidates",
    .init = rf_init,
    .forward = rf_forward,
    .backward = rf_backward,
    .flops = rf_flops,
    .bytes = rf_bytes,
    .state_bytes = rf_state_bytes,
    .ref_forward = rf_ref_forward,
    .check_params = "chunk=4 rounds=3",
    .ref_view = rf_ref_view,
};
