/* Properties of `routing` (Routing Transformer): the fp32 kernel equals its
 * double reference (shapes, masks, GQA, Dv != D, both assignments,
 * keep_diag off, duplicated centroids that tie exactly); one cluster is
 * softmax attention; argmax routing is softmax masked to the query's
 * cluster (built here from the centroids, without the kernel's code); the
 * error against softmax falls as the clusters grow (mean over seeds);
 * gradients against central differences for balanced and keep_diag=0;
 * balanced with a causal mask is refused; the centroid EMA (decay 0 gives
 * the normalised cluster means, decay 1 nothing, threads do not matter)
 * and dw = 0. Leakage, determinism, views: the registry-driven tests. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"
#include "kernels/routing/routing.h"
#include "models/model.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_routing;

static attn_args rt_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, threads, params);
}

/* ---- the double reference ---- */

static const struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *mask, *params;
} ref_cases[] = {
    {2, 2, 2, 64, 16, 0, "full", "clusters=4"},
    {1, 2, 2, 100, 16, 0, "causal", "clusters=3"},            /* clusters of ~33 keys: several key tiles */
    {1, 4, 2, 130, 32, 0, "full", ""},                         /* GQA, kappa = 11 */
    {2, 2, 1, 70, 16, 24, "causal", "clusters=5"},             /* Dv != D */
    {1, 2, 2, 300, 16, 0, "full", "clusters=2"},               /* 150-row clusters: query and key tiles */
    {1, 2, 2, 300, 16, 0, "causal", "clusters=2 keep_diag=0"}, /* rows without keys */
    {1, 2, 2, 96, 16, 0, "full", "assign=balanced clusters=5"},
    {1, 4, 2, 200, 32, 40, "full", "assign=balanced"},         /* kappa 14, w 15 */
    {1, 2, 2, 150, 16, 0, "full", "assign=balanced clusters=2 keep_diag=0"},
    {2, 2, 2, 1, 16, 0, "full", ""},
    {1, 2, 2, 513, 64, 0, "causal", ""},
    {1, 4, 2, 200, 32, 0, "full", "iters=3"},                  /* Lloyd steps on the sequence */
    {2, 2, 2, 150, 16, 24, "full", "assign=balanced iters=2 clusters=6"},
};

Test(routing, forward_matches_double_reference_on_shapes_parameters_and_masks, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        attn_args a = rt_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].N, ref_cases[i].D,
                              ref_cases[i].mask, ref_cases[i].params, 2);
        a.Dv = ref_cases[i].Dv;
        char what[160];
        snprintf(what, sizeof what, "case %zu (%s, N=%lld, %s)", i, ref_cases[i].mask, (long long)ref_cases[i].N,
                 ref_cases[i].params);
        own_ref_check(K, &a, 11 + i, what);
    }
}

/* ---- limit cases against softmax ---- */

/* The kernel's O (and lse) against a double softmax whose allowed pairs
 * `allowed` decides; the exact kernels' tolerances. */
typedef int (*pair_rule)(const fx_problem *p, int64_t h, int64_t i, int64_t j, void *ctx);

static void softmax_row(const fx_problem *p, int64_t b, int64_t h, int64_t i, pair_rule allowed, void *ctx, double *o,
                        double *lse)
{
    int64_t N = p->a.Nk, hk = h / (p->a.H / p->a.H_kv), D = p->a.D;
    double m = -INFINITY, z = 0, sc = attn_scale(&p->a);
    double *s = malloc(sizeof(double) * (size_t)N);
    for (int64_t j = 0; j < N; j++) {
        s[j] = -INFINITY;
        if (allowed(p, h, i, j, ctx)) {
            s[j] = 0;
            for (int64_t d = 0; d < D; d++)
                s[j] += sc * attn_at64(&p->q64, b, h, i)[d] * attn_at64(&p->k64, b, hk, j)[d];
        }
        m = fmax(m, s[j]);
    }
    memset(o, 0, sizeof(double) * (size_t)D);
    for (int64_t j = 0; m > -INFINITY && j < N; j++)
        z += exp(s[j] - m);
    for (int64_t j = 0; m > -INFINITY && j < N; j++)
        for (int64_t d = 0; d < D; d++)
            o[d] += exp(s[j] - m) / z * attn_at64(&p->v64, b, hk, j)[d];
    *lse = m > -INFINITY ? m + log(z) : -INFINITY;
    free(s);
}

static void expect_masked_softmax(const attn_args *a, uint64_t seed, pair_rule allowed, void *ctx, const char *what)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++)
                softmax_row(&p, b, h, i, allowed, ctx, attn_at64(&p.o64, b, h, i), &p.lse64[(b * a->H + h) * a->Nq + i]);
    p.kernel = NULL; /* scale the error by max|V|, as for exact kernels */
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s: %s", what, attn_last_error());
    double eo = fx_err_o(&p), el = fx_err_lse(&p);
    cr_assert(eo <= fx_tol_o(a->Nk), "%s: err_O %.3g", what, eo);
    cr_assert(el <= 1e-5, "%s: err_lse %.3g", what, el);
    fx_free(&p);
}

static int causal_rule(const fx_problem *p, int64_t h, int64_t i, int64_t j, void *ctx)
{
    (void)h, (void)ctx;
    return !(p->a.mask.kind == ATTN_MASK_CAUSAL || p->a.mask.causal) || j <= i;
}

Test(routing, one_cluster_is_softmax_attention, .timeout = 30)
{
    static const struct {
        const char *mask, *params;
    } cases[] = {{"full", "clusters=1"}, {"causal", "clusters=1"}, {"full", "clusters=1 assign=balanced"},
                 {"causal", "clusters=1 keep_diag=0"}, {"full", "clusters=1 assign=balanced keep_diag=0"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = rt_args(2, 4, 2, 150, 32, cases[c].mask, cases[c].params, 2);
        char what[96];
        snprintf(what, sizeof what, "%s %s", cases[c].mask, cases[c].params);
        expect_masked_softmax(&a, 5 + c, causal_rule, NULL, what);
    }
}

/* Argmax clusters of the rows of (b=0, hx) of x under head h's centroids,
 * computed here in double. */
static void clusters_of(const fx_problem *p, const attn_tensor_f64 *x, int64_t hx, int64_t h, int64_t kappa,
                        int32_t *cl)
{
    int64_t D = p->a.D;
    for (int64_t i = 0; i < x->N; i++) {
        const double *r = attn_at64(x, 0, hx, i);
        double n = 0, best = -INFINITY;
        for (int64_t d = 0; d < D; d++)
            n += r[d] * r[d];
        for (int64_t c = 0; c < kappa; c++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++)
                s += r[d] / sqrt(n) * attn_at64(&p->w64, 0, h, 0)[c * D + d];
            if (s > best)
                best = s, cl[i] = (int32_t)c;
        }
    }
}

typedef struct {
    int32_t cq[4][512], ck[4][512];
    int keep_diag;
} cluster_ctx;

static int same_cluster_rule(const fx_problem *p, int64_t h, int64_t i, int64_t j, void *ctx)
{
    const cluster_ctx *c = ctx;
    return causal_rule(p, h, i, j, NULL) && (c->cq[h][i] == c->ck[h][j] || (c->keep_diag && i == j));
}

Test(routing, argmax_routing_is_softmax_masked_to_the_query_cluster, .timeout = 30)
{
    static const struct {
        const char *mask, *params;
        int keep_diag;
    } cases[] = {{"full", "clusters=4", 1}, {"causal", "clusters=6", 1}, {"causal", "clusters=3 keep_diag=0", 0},
                 {"full", "", 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = rt_args(1, 4, 2, 300, 16, cases[c].mask, cases[c].params, 2);
        rt_plan pl;
        cr_assert_eq(rt_plan_make(&pl, &a), 0);
        fx_problem p;
        fx_make_for(&p, K, &a, 21 + c);
        static cluster_ctx cc;
        cc.keep_diag = cases[c].keep_diag;
        for (int64_t h = 0; h < a.H; h++) {
            clusters_of(&p, &p.q64, h, h, pl.kappa, cc.cq[h]);
            clusters_of(&p, &p.k64, h / 2, h, pl.kappa, cc.ck[h]);
        }
        fx_free(&p);
        char what[96];
        snprintf(what, sizeof what, "%s %s", cases[c].mask, cases[c].params);
        expect_masked_softmax(&a, 21 + c, same_cluster_rule, &cc, what);
    }
}

/* ---- fidelity: fewer, larger clusters come closer to softmax ---- */

static double peaked_rel_err(const char *params, uint64_t seed)
{
    attn_args a = rt_args(1, 2, 2, 512, 32, "full", params, 2);
    fx_problem p; /* no own reference: the oracle is what this compares with */
    cr_assert_eq(problem_make(&p, K, &a, seed, PROBLEM_TWIN), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    fid_fill(FID_PEAKED, &a, seed, &io);
    problem_widen_inputs(&p);
    attn_oracle_forward_f64(&p.a, &p.q64, &p.k64, &p.v64, &p.o64, p.lse64);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double num = 0, den = 0;
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
        num += pow(p.o.data[i] - p.o64.data[i], 2), den += pow(p.o64.data[i], 2);
    fx_free(&p);
    return sqrt(num / den);
}

Test(routing, error_against_softmax_falls_as_clusters_grow_mean_over_seeds, .timeout = 60)
{
    static const char *const budgets[2][3] = {{"clusters=32", "clusters=8", "clusters=2"},
                                              {"assign=balanced clusters=32", "assign=balanced clusters=8",
                                               "assign=balanced clusters=2"}};
    for (int m = 0; m < 2; m++) {
        double err[3] = {0};
        for (int k = 0; k < 3; k++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                err[k] += peaked_rel_err(budgets[m][k], seed) / 3;
        cr_assert(err[1] < err[0] && err[2] < err[1], "%s: mean rel err %.4f, %.4f, %.4f does not fall",
                  m ? "balanced" : "argmax", err[0], err[1], err[2]);
    }
}

/* Centroids fitted to the sequence (Lloyd steps) route a query and its
 * planted keys together more often than random ones. */
Test(routing, lloyd_steps_on_the_sequence_lower_the_error_mean_over_seeds, .timeout = 60)
{
    static const char *const params[] = {"clusters=16", "clusters=16 iters=4"};
    double err[2] = {0};
    for (int k = 0; k < 2; k++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            err[k] += peaked_rel_err(params[k], seed) / 3;
    cr_assert(err[1] < 0.9 * err[0], "mean rel err %.4f with Lloyd steps, %.4f without", err[1], err[0]);
}

/* ---- gradients, refusals ---- */

Test(routing, gradients_match_central_differences_for_balanced_and_without_the_diagonal, .timeout = 60)
{
    static const struct {
        const char *mask, *params;
    } cases[] = {{"full", "assign=balanced clusters=3"}, {"causal", "clusters=3 keep_diag=0"},
                 {"full", "assign=balanced clusters=4 keep_diag=0"}, {"full", "clusters=3 iters=2"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = rt_args(1, 2, 1, 24, 8, cases[c].mask, cases[c].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 31 + c, e), 0, "%s", attn_last_error());
        for (int g = 0; g < 3; g++)
            cr_assert(e[g] <= CHECK_TOL_GRAD, "%s %s: %s error %.3g", cases[c].mask, cases[c].params,
                      check_grad_names[g], e[g]);
        cr_assert_eq(e[6], 0, "dw must be 0 (the centroids move by EMA)");
    }
}

Test(routing, balanced_routing_or_lloyd_steps_under_a_causal_mask_are_refused)
{
    attn_args a = rt_args(1, 2, 2, 32, 16, "causal", "assign=balanced", 1);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EUNSUPPORTED);
    a = rt_args(1, 2, 2, 32, 16, "causal", "iters=1", 1);
    cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EUNSUPPORTED);
    a = rt_args(1, 2, 2, 32, 16, "full", "clusters=33", 1);
    cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EINVAL, "more clusters than rows");
}

/* Duplicated centroids tie exactly: argmax takes the first, balanced ranks
 * by position; the kernel's exact fallback agrees with the reference. */
Test(routing, exact_ties_between_duplicated_centroids_route_as_the_reference, .timeout = 30)
{
    static const char *const params[] = {"clusters=4", "clusters=4 assign=balanced"};
    for (int c = 0; c < 2; c++) {
        attn_args a = rt_args(1, 2, 2, 64, 16, "full", params[c], 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 41);
        for (int64_t h = 0; h < 2; h++) /* centroid 1 = centroid 0, centroid 3 = centroid 2 */
            for (int64_t d = 0; d < 16; d++) {
                float *w = attn_at(&p.w, 0, h, 0);
                w[16 + d] = w[d], w[48 + d] = w[32 + d];
            }
        fx_ref_forward(&p);
        own_ref_check_problem(K, &p, params[c]);
    }
}

/* ---- the centroid update ---- */

Test(routing, centroid_ema_moves_to_normalised_cluster_means_and_is_thread_independent, .timeout = 30)
{
    attn_args a = rt_args(1, 2, 1, 60, 8, "causal", "clusters=3 decay=0", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 51);
    static cluster_ctx cc;
    double want[2][3][8] = {{{0}}};
    for (int64_t h = 0; h < 2; h++) {
        clusters_of(&p, &p.q64, h, h, 3, cc.cq[h]);
        clusters_of(&p, &p.k64, 0, h, 3, cc.ck[h]);
        for (int64_t c = 0; c < 3; c++) {
            double mq[8] = {0}, mk[8] = {0}, n = 0;
            int nq = 0, nk = 0;
            for (int64_t i = 0; i < 60; i++) {
                const double *q = attn_at64(&p.q64, 0, h, i), *k = attn_at64(&p.k64, 0, 0, i);
                double lq = 0, lk = 0;
                for (int d = 0; d < 8; d++)
                    lq += q[d] * q[d], lk += k[d] * k[d];
                for (int d = 0; d < 8; d++) {
                    mq[d] += cc.cq[h][i] == c ? q[d] / sqrt(lq) : 0;
                    mk[d] += cc.ck[h][i] == c ? k[d] / sqrt(lk) : 0;
                }
                nq += cc.cq[h][i] == c, nk += cc.ck[h][i] == c;
            }
            cr_assert(nq > 0 && nk > 0, "a cluster without members: pick another seed");
            for (int d = 0; d < 8; d++)
                want[h][c][d] = (mq[d] / nq + mk[d] / nk) / 2, n += want[h][c][d] * want[h][c][d];
            for (int d = 0; d < 8; d++)
                want[h][c][d] /= sqrt(n);
        }
    }
    attn_io io = problem_io(&p);
    float before[2][24];
    for (int64_t h = 0; h < 2; h++)
        memcpy(before[h], attn_at(&p.w, 0, h, 0), sizeof before[h]);
    cr_assert_eq(K->train_update(&a, &io, &p.w), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int c = 0; c < 3; c++)
            for (int d = 0; d < 8; d++)
                cr_assert(fabs(attn_at(&p.w, 0, h, 0)[c * 8 + d] - want[h][c][d]) < 1e-6, "head %lld centroid %d",
                          (long long)h, c);
    /* decay 1 keeps them (unit already), and 3 threads give the same bits as 1 */
    float once[2][24];
    attn_args keep = rt_args(1, 2, 1, 60, 8, "causal", "clusters=3 decay=1", 1);
    for (int64_t h = 0; h < 2; h++)
        memcpy(attn_at(&p.w, 0, h, 0), before[h], sizeof before[h]);
    cr_assert_eq(K->train_update(&keep, &io, &p.w), 0);
    for (int64_t h = 0; h < 2; h++)
        for (int d = 0; d < 24; d++)
            cr_assert(fabs(attn_at(&p.w, 0, h, 0)[d] - before[h][d]) < 1e-6);
    attn_args half = rt_args(1, 2, 1, 60, 8, "causal", "clusters=3 decay=0.5", 1);
    for (int th = 1; th <= 3; th += 2) {
        half.threads = th;
        for (int64_t h = 0; h < 2; h++)
            memcpy(attn_at(&p.w, 0, h, 0), before[h], sizeof before[h]);
        cr_assert_eq(K->train_update(&half, &io, &p.w), 0);
        for (int64_t h = 0; th == 1 && h < 2; h++)
            memcpy(once[h], attn_at(&p.w, 0, h, 0), sizeof once[h]);
        for (int64_t h = 0; th == 3 && h < 2; h++)
            cr_assert_eq(memcmp(once[h], attn_at(&p.w, 0, h, 0), sizeof once[h]), 0, "threads changed the update");
    }
    fx_free(&p);
}

/* A training step of a causal LM moves the centroids (unit, and not by the
 * optimizer: they are not decayed and get no gradient); an evaluation
 * forward leaves them. */
Test(routing, a_training_step_updates_the_centroids_by_ema_and_evaluation_does_not, .timeout = 30)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.vocab = 11, c.max_len = 16, c.layers = 1, c.d_model = 16;
    c.heads = 2, c.heads_kv = 2, c.mlp = 0, c.n_kernels = 1, c.loops = 1, c.causal = 1;
    snprintf(c.kernels[0], sizeof c.kernels[0], "routing");
    cr_assert_eq(param_bag_add_list(&c.kparams, "clusters=3 decay=0.5"), 0);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, 2, 16, 0, 2), 0, "%s", attn_last_error());
    nn_param_info info[32];
    int n = nn_model_params(&m, info, 32), at = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(info[i].name, "l0.attn.kernel_w"))
            at = i;
    cr_assert(at >= 0, "no kernel weights in the parameter table");
    cr_assert_eq(info[at].decay, 0, "centroids must not be weight-decayed");
    float *mu = m.params + info[at].offset, before[2 * 3 * 8];
    cr_assert_eq(info[at].count, sizeof before / sizeof *before);
    memcpy(before, mu, sizeof before);
    int32_t tok[32], tgt[32];
    for (int i = 0; i < 32; i++)
        tok[i] = (i * 7 + 3) % 11, tgt[i] = (i * 5 + 1) % 11;
    nn_batch b = {.B = 2, .tokens = tok, .targets = tgt};
    double loss;
    int64_t correct, scored;
    cr_assert_eq(nn_model_forward(&m, &b, 0, 1, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    cr_assert_eq(memcmp(before, mu, sizeof before), 0, "an evaluation forward changed the centroids");
    cr_assert_eq(nn_model_forward(&m, &b, 1, 1, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_backward(&m, &b, 1, 1.0f), 0, "%s", attn_last_error());
    cr_assert_neq(memcmp(before, mu, sizeof before), 0, "a training step left the centroids");
    for (int k = 0; k < 6; k++) {
        double n2 = 0;
        for (int d = 0; d < 8; d++)
            n2 += (double)mu[k * 8 + d] * mu[k * 8 + d];
        cr_assert(fabs(n2 - 1) < 1e-5, "centroid %d has norm^2 %.7f", k, n2);
    }
    for (size_t i = 0; i < info[at].count; i++)
        cr_assert_eq(m.grads[info[at].offset + i], 0.0f, "centroids got a gradient");
    nn_model_free(&m);
}

/* ---- leakage and determinism on the paths the parameters select ---- */

Test(routing, causal_rows_ignore_later_rows_bitwise_on_every_causal_path, .timeout = 30)
{
    static const char *const params[] = {"clusters=3", "clusters=5 keep_diag=0", "clusters=1", "clusters=40"};
    for (size_t c = 0; c < sizeof params / sizeof *params; c++)
        for (int64_t at = 7; at <= 40; at += 33) {
            attn_args a = rt_args(1, 4, 2, 97, 16, "causal", params[c], 2);
            int ok = 0;
            cr_assert_eq(check_kernel_causal_leakage(K, &a, at, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows < %lld changed when later rows did", params[c], (long long)at);
        }
}

Test(routing, results_and_gradients_are_bitwise_the_same_for_1_2_and_3_threads, .timeout = 60)
{
    static const struct {
        const char *mask, *params;
    } cases[] = {{"causal", "clusters=3"}, {"causal", "clusters=5 keep_diag=0"}, {"full", "assign=balanced clusters=6"},
                 {"full", "iters=2 clusters=4"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int th = 2; th <= 3; th++) {
            attn_args a = rt_args(2, 4, 2, 130, 16, cases[c].mask, cases[c].params, 1);
            a.Dv = 24;
            int ok = 0;
            cr_assert_eq(check_kernel_thread_determinism(K, &a, th, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s %s: 1 and %d threads differ", cases[c].mask, cases[c].params, th);
        }
}

/* ---- cost model ---- */

Test(routing, cost_model_is_routing_scores_plus_attention_to_n_over_kappa_keys)
{
    attn_args a = rt_args(2, 4, 2, 1000, 32, "full", "clusters=10", 1);
    a.Dv = 16;
    double route = 4.0 * 1000 * 32 * 10, att = 2.0 * 1000 * 100 * (32 + 16);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 8 * (route + att), 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * 8 * (route + att), 1e-6);
    attn_args c = rt_args(2, 4, 2, 1000, 32, "causal", "clusters=10", 1);
    c.Dv = 16;
    cr_assert_float_eq(K->flops(&c, ATTN_PASS_FWD), 8 * (route + att / 2), 1e-6);
    attn_args it = rt_args(2, 4, 2, 1000, 32, "full", "clusters=10 iters=3", 1);
    it.Dv = 16;
    cr_assert_float_eq(K->flops(&it, ATTN_PASS_FWD), 8 * (4 * route + att), 1e-6, "Lloyd steps route again");
    size_t kv = 2 * 2 * (2 * 1000) * 32 * sizeof(float) /* K and V of 2 KV heads, 2 sequences */, centroids = 4 * 10 * 32 * sizeof(float);
    cr_assert_eq(K->state_bytes(&a), kv + centroids);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), attn_softmax_bytes(&a, ATTN_PASS_FWD) + (double)centroids, 1e-6);
}
