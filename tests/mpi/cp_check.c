/* The context-parallel kernels against the double oracle, run under mpirun
 * (tests/mpi/run_cp_tests.sh: 2 and 4 ranks). Criterion forks a process per
 * test, which MPI does not survive, so this is a plain program: every rank
 * builds the whole problem from one seed with the oracle's answers
 * (fixture.h), runs the kernel on its own rows, and the rows of all ranks
 * are summed into whole tensors (each position written by one rank, zero
 * elsewhere) that are judged by the fixture's error measures with flash's
 * tolerances. Also checked: every rank's bytes sent equal the volume
 * formula, and a shape that does not split is refused by name.
 * Prints one line per case on rank 0; exit 1 if any case failed. */
#include "harness/measure/fixture.h"
#include "kernels/cp/cp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nranks;

typedef struct {
    attn_tensor q, k, v, o, d_o, dq, dk, dv;
    float *lse;
} shard;

static attn_tensor shard_tensor(const attn_tensor *whole, int64_t n)
{
    attn_tensor t = {.B = whole->B, .H = whole->H, .N = n, .D = whole->D};
    t.sn = t.D, t.sh = n * t.D, t.sb = t.H * t.sh;
    t.data = attn_alloc(sizeof(float) * (size_t)(t.B * t.sb));
    return t;
}

/* Rows of `whole` that this rank holds to `local` (to_local) or back. */
static void move_rows(cp_kind kind, const attn_tensor *whole, const attn_tensor *local, int to_local)
{
    for (int64_t b = 0; b < local->B; b++)
        for (int64_t h = 0; h < local->H; h++)
            for (int64_t i = 0; i < local->N; i++) {
                float *w = attn_at(whole, b, h, cp_global_row(kind, whole->N, nranks, rank, i));
                float *l = attn_at(local, b, h, i);
                memcpy(to_local ? l : w, to_local ? w : l, sizeof(float) * (size_t)local->D);
            }
}

/* Zero whole, put this rank's rows in, sum over ranks: the whole result. */
static void gather(cp_kind kind, const attn_tensor *whole, const attn_tensor *local)
{
    memset(whole->data, 0, sizeof(float) * (size_t)(whole->B * whole->sb));
    move_rows(kind, whole, local, 0);
    MPI_Allreduce(MPI_IN_PLACE, whole->data, (int)(whole->B * whole->sb), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static attn_tensor lse_tensor(float *lse, int64_t B, int64_t H, int64_t N)
{
    return (attn_tensor){.data = lse, .B = B, .H = H, .N = N, .D = 1, .sb = H * N, .sh = N, .sn = 1};
}

static int failures;

static void report(int ok, const char *what, const char *detail)
{
    if (!ok)
        failures++;
    if (rank == 0)
        printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, detail);
}

/* Forward and backward of kind on (mask, H, H_kv, D, flash params), checked against the oracle. */
static void check_case(cp_kind kind, const char *mask, int64_t H, int64_t H_kv, int64_t D, const char *params,
                       uint64_t seed)
{
    char what[256], detail[512];
    snprintf(what, sizeof what, "%s_matches_oracle P=%d B=2 H=%lld H_kv=%lld N=96 D=%lld %s%s%s", cp_kind_name(kind),
             nranks, (long long)H, (long long)H_kv, (long long)D, mask, params ? " " : "", params ? params : "");
    attn_args a = fx_args_params(2, H, H_kv, 96, 96, D, mask, 1, params);
    a.backward = 1;
    fx_problem p;
    fx_make(&p, &a, seed);
    int64_t n = a.Nq / nranks;
    shard s = {shard_tensor(&p.q, n), shard_tensor(&p.k, n), shard_tensor(&p.v, n), shard_tensor(&p.o, n),
               shard_tensor(&p.d_o, n), shard_tensor(&p.dq, n), shard_tensor(&p.dk, n), shard_tensor(&p.dv, n),
               attn_alloc(sizeof(float) * (size_t)(a.B * a.H * n))};
    const attn_tensor *in_whole[] = {&p.q, &p.k, &p.v, &p.d_o}, *in_local[] = {&s.q, &s.k, &s.v, &s.d_o};
    for (int i = 0; i < 4; i++)
        move_rows(kind, in_whole[i], in_local[i], 1);
    cp_ctx *ctx;
    cp_stats fwd = {0}, bwd = {0};
    int rc = cp_ctx_create(kind, MPI_COMM_WORLD, &a, &ctx);
    attn_io io = {.q = s.q, .k = s.k, .v = s.v, .o = s.o, .lse = s.lse};
    attn_grads g = {.d_o = s.d_o, .dq = s.dq, .dk = s.dk, .dv = s.dv};
    if (!rc)
        rc = cp_forward(ctx, &io, &fwd);
    if (!rc)
        rc = cp_backward(ctx, &io, &g, &bwd);
    cp_ctx_destroy(ctx);
    int any_rc = rc;
    MPI_Allreduce(MPI_IN_PLACE, &any_rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (any_rc) {
        report(0, what, rc ? attn_last_error() : "another rank failed");
    } else {
        const attn_tensor *out_whole[] = {&p.o, &p.dq, &p.dk, &p.dv}, *out_local[] = {&s.o, &s.dq, &s.dk, &s.dv};
        for (int i = 0; i < 4; i++)
            gather(kind, out_whole[i], out_local[i]);
        attn_tensor lw = lse_tensor(p.lse, a.B, a.H, a.Nq), ll = lse_tensor(s.lse, a.B, a.H, n);
        gather(kind, &lw, &ll);
        double eo = fx_err_o(&p), el = fx_err_lse(&p);
        double eg[3] = {fx_err_grad(&p.dq, &p.dq64), fx_err_grad(&p.dk, &p.dk64), fx_err_grad(&p.dv, &p.dv64)};
        /* the volume formulas against what this rank sent; a mismatch on any rank fails */
        int bytes_ok = fwd.bytes_sent == cp_bytes_per_rank(kind, &a, nranks, ATTN_PASS_FWD) &&
                       bwd.bytes_sent == cp_bytes_per_rank(kind, &a, nranks, ATTN_PASS_BWD);
        MPI_Allreduce(MPI_IN_PLACE, &bytes_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        int ok = eo <= fx_tol_o(a.Nk) && el <= 1e-5 && eg[0] <= 1e-4 && eg[1] <= 1e-4 && eg[2] <= 1e-4 && bytes_ok;
        snprintf(detail, sizeof detail,
                 "err_O %.2g (tol %.2g), err_lse %.2g (1e-5), dQ %.2g dK %.2g dV %.2g (1e-4), "
                 "bytes sent %.0f fwd %.0f bwd (%s the formulas)",
                 eo, fx_tol_o(a.Nk), el, eg[0], eg[1], eg[2], fwd.bytes_sent, bwd.bytes_sent,
                 bytes_ok ? "equal to" : "NOT equal to");
        report(ok, what, detail);
    }
    attn_tensor *all[] = {&s.q, &s.k, &s.v, &s.o, &s.d_o, &s.dq, &s.dk, &s.dv};
    for (int i = 0; i < 8; i++)
        attn_free(all[i]->data);
    attn_free(s.lse);
    fx_free(&p);
}

/* A length the ranks cannot split is refused, with a message naming N, before any communication. */
static void check_refusal(cp_kind kind, int64_t N)
{
    char what[128];
    snprintf(what, sizeof what, "%s_refuses_N_%lld_that_does_not_split_over_%d_ranks", cp_kind_name(kind),
             (long long)N, nranks);
    attn_args a = fx_args(1, 4, 4, N, N, 16, "causal", 1);
    int rc = cp_check(kind, &a, nranks);
    report(rc == ATTN_EUNSUPPORTED && strstr(attn_last_error(), "N="), what, rc ? attn_last_error() : "accepted");
}

/* ulysses gives each rank whole KV heads: H_kv not a multiple of P is refused by name. */
static void check_ulysses_heads_refusal(void)
{
    char what[128];
    snprintf(what, sizeof what, "ulysses_refuses_H_kv_not_a_multiple_of_%d_ranks", nranks);
    attn_args a = fx_args(1, 2 * nranks, nranks / 2, 4 * nranks, 4 * nranks, 16, "causal", 1); /* GQA 4:1 */
    int rc = cp_check(CP_ULYSSES, &a, nranks);
    report(rc == ATTN_EUNSUPPORTED && strstr(attn_last_error(), "H_kv="), what, rc ? attn_last_error() : "accepted");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int P = nranks;
    static const char *const masks[] = {"full", "causal", "window:wl=20,wr=5", "document:lens=30+45+21"};
    uint64_t seed = 7000;
    for (int k = 0; k < 2; k++)
        for (int m = 0; m < 4; m++) /* GQA: two query heads per KV head */
            check_case((cp_kind)k, masks[m], 2 * P, P, m % 2 ? 32 : 16, NULL, seed++);
    /* every query head on one KV head, and flash tiles smaller than a chunk */
    check_case(CP_RING, "causal", 2 * P, 1, 16, "br=8 bc=16", seed++);
    check_case(CP_RING, "document:lens=50+46", P, P, 16, "br=8 bc=16", seed++);
    check_case(CP_ULYSSES, "causal", 2 * P, P, 16, "br=8 bc=16", seed++);
    check_refusal(CP_RING, 2 * P * 5 + 1);
    if (P > 1) /* one rank takes any N */
        check_refusal(CP_ULYSSES, P * 5 + 1);
    if (P % 2 == 0)
        check_ulysses_heads_refusal();
    if (rank == 0)
        printf("%d ranks: %s\n", P, failures ? "FAILED" : "all passed");
    MPI_Finalize();
    return failures ? 1 : 0;
}
