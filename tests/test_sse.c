/* Properties of sse (cases N in {1,7,130}, D = 16,
 * P in {1,4}, k in {1,2}, CAUSAL and DOCUMENT): the gathered, chunked forward
 * = the recurrent double reference for several chunk sizes; P = k = 1 is two
 * GLAs; the mask form (every partition over all tokens, unselected tokens with
 * q, k zeroed and log-gate 0) = the varlen form; empty buckets keep zero
 * states and add nothing; ties go to the lower partition;
 * gradients (incl. gates and router logits) against central differences of
 * the reference; state size; cost model; parameter validation. Causal
 * leakage and thread determinism on its router settings: test_properties.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/gla/gla.h"
#include "kernels/sse/sse.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_sse;

static attn_args make_args(int64_t B, int64_t H, int64_t Hkv, int64_t N, int64_t D, int64_t Dv, const char *mask,
                           int64_t P, int64_t k, int64_t chunk)
{
    attn_args a = fx_args(B, H, Hkv, N, N, D, mask, 1);
    char kv[48];
    a.Dv = Dv;
    snprintf(kv, sizeof kv, "partitions=%lld", (long long)P);
    fx_add_params(&a, kv);
    snprintf(kv, sizeof kv, "topk=%lld", (long long)k);
    fx_add_params(&a, kv);
    if (chunk > 0) {
        snprintf(kv, sizeof kv, "chunk=%lld", (long long)chunk);
        fx_add_params(&a, kv);
    }
    return a;
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* max|O - x| / max|O_ref| for an fp32 output against a double one of the same shape */
static double rel_err32(const attn_tensor *o, const double *x, double ref)
{
    double e = 0;
    for (int64_t i = 0; i < o->B * o->sb; i++)
        e = fmax(e, fabs((double)o->data[i] - x[i]));
    return e / ref;
}

static const int64_t PK[][2] = {{1, 1}, {4, 1}, {4, 2}}; /* (P, k) */

Test(sse, sse_chunked_equals_recurrent, .timeout = 60)
{
    static const int64_t chunks[] = {1, 16, 64}, Ns[] = {1, 7, 130};
    for (int c = 0; c < 3; c++)
        for (int n = 0; n < 3; n++)
            for (int pk = 0; pk < 3; pk++)
                for (int doc = 0; doc < 2 - (Ns[n] == 1); doc++) {
                    int64_t Hkv = pk == 1 ? 1 : 2, Dv = pk == 2 ? 24 : 16; /* GQA and Dv != D on some */
                    attn_args a = make_args(1 + doc, 2, Hkv, Ns[n], 16, Dv,
                                            doc ? "document:n=3,seed=5,causal=1" : "causal", PK[pk][0], PK[pk][1],
                                            chunks[c]);
                    fx_problem p;
                    fx_make_for(&p, K, &a, 11 + (uint64_t)(c * 7 + n * 3 + pk));
                    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: every row written */
                    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
                    double e = fx_err_o(&p);
                    cr_assert(e <= 5e-5, "chunk %lld N %lld P %lld k %lld doc %d: err_O %.3g", (long long)chunks[c],
                              (long long)Ns[n], (long long)PK[pk][0], (long long)PK[pk][1], doc, e);
                    fx_free(&p);
                }
}

/* Runs gla's forward on (q, k, v, gate) into o (shaped like p->o). */
static void run_gla(const fx_problem *p, const attn_tensor *q, const attn_tensor *k, attn_tensor *o)
{
    attn_args a = p->a;
    a.params.n = 0;
    for (int i = 0; i < p->a.params.n; i++)
        if (strcmp(p->a.params.key[i], "chunk") == 0) {
            char kv[80];
            snprintf(kv, sizeof kv, "chunk=%s", p->a.params.val[i]);
            fx_add_params(&a, kv);
        }
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(&attn_kernel_gla, &a, &ctx), 0, "%s", attn_last_error());
    attn_io io = {.q = *q, .k = *k, .v = p->v, .o = *o, .lse = p->lse, .gate = p->gate};
    cr_assert_eq(attn_kernel_gla.forward(&ctx, &io), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}

static attn_tensor tensor_like(const attn_tensor *t)
{
    attn_tensor x = *t;
    x.data = attn_alloc(sizeof(float) * (size_t)(t->B * t->sb));
    memcpy(x.data, t->data, sizeof(float) * (size_t)(t->B * t->sb));
    return x;
}

/* P = 1, k = 1: pi = 1, the one partition sees every token: O = 2 x gla.
 * Bitwise when every document is whole chunks (the same GLA core on identical
 * rows, then o + o); otherwise the bucket's padded last chunk rounds
 * differently from gla's partial one. */
Test(sse, sse_one_partition_top1_equals_two_gla, .timeout = 60)
{
    static const char *const masks[] = {"causal", "document:lens=48+32+48,causal=1", "causal",
                                        "document:lens=50+30+50,causal=1"};
    for (int m = 0; m < 4; m++) {
        int64_t N = m < 2 ? 128 : 130;
        attn_args a = make_args(1, 4, 2, N, 16, 16, masks[m], 1, 1, 16);
        fx_problem p;
        fx_make_for(&p, K, &a, 5 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        attn_tensor og = tensor_like(&p.o);
        run_gla(&p, &p.q, &p.k, &og);
        double e = 0, ref = 0;
        for (int64_t i = 0; i < og.B * og.sb; i++) {
            e = fmax(e, fabs((double)p.o.data[i] - 2.0 * og.data[i]));
            ref = fmax(ref, fabs(2.0 * og.data[i]));
        }
        if (N % 16 == 0)
            cr_assert(e == 0, "%s N %lld: sse differs from 2 gla by %.3g (bitwise expected)", masks[m], (long long)N, e);
        else
            cr_assert(e <= 1e-6 * ref, "%s N %lld: sse differs from 2 gla by %.3g of %.3g", masks[m], (long long)N, e,
                      ref);
        attn_free(og.data);
        fx_free(&p);
    }
}

/* The mask form in double: every partition runs over every token; an
 * unselected token has q~ = k~ = 0 and log-gate 0 (or, with token_gate_when_off,
 * its own gate: the known pitfall, an unselected partition must not decay). final (if not NULL): the 1 + P states
 * after the sequence, [B][H_kv][1 + P][Dk][Dv]. */
static void mask_form(const fx_problem *p, int token_gate_when_off, double *out, double *final)
{
    const attn_args *a = &p->a;
    int64_t P = p->router.D, k = 1, G = a->H / a->H_kv, Dk = a->D, Dv = attn_dv(a), seg[GLA_MAX_SEGS + 1];
    for (int i = 0; i < a->params.n; i++)
        if (strcmp(a->params.key[i], "topk") == 0)
            k = atoll(a->params.val[i]);
    int64_t nseg = attn_gla_segments(a, seg);
    double sc = attn_scale(a), *S = calloc((size_t)((1 + P) * Dk * Dv), sizeof(double));
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t hk = 0; hk < a->H_kv; hk++)
            for (int64_t sg = 0; sg < nseg; sg++) {
                memset(S, 0, sizeof(double) * (size_t)((1 + P) * Dk * Dv));
                for (int64_t t = seg[sg]; t < seg[sg + 1]; t++) {
                    const double *e = attn_at64(&p->router64, b, hk, t), *g = attn_at64(&p->gate64, b, hk, t);
                    double pi[8], z = 0, mx = -INFINITY;
                    int sel[8] = {0};
                    for (int64_t j = 0; j < P; j++)
                        mx = fmax(mx, e[j]);
                    for (int64_t j = 0; j < P; j++)
                        z += pi[j] = exp(e[j] - mx);
                    for (int64_t r = 0; r < k; r++) { /* r-th largest, ties -> lower index */
                        int64_t best = -1;
                        for (int64_t j = 0; j < P; j++)
                            if (!sel[j] && (best < 0 || e[j] > e[best]))
                                best = j;
                        sel[best] = 1;
                    }
                    for (int64_t j = 0; j <= P; j++) { /* j = 0: the shared state, always on */
                        int on = j == 0 || sel[j - 1];
                        double c = j == 0 ? 1 : on ? pi[j - 1] / z : 0, *Sj = S + j * Dk * Dv;
                        for (int64_t d = 0; d < Dk; d++) {
                            double alpha = on || token_gate_when_off ? exp(g[d]) : 1.0;
                            double kd = c * attn_at64(&p->k64, b, hk, t)[d];
                            for (int64_t x = 0; x < Dv; x++)
                                Sj[d * Dv + x] = alpha * Sj[d * Dv + x] + kd * attn_at64(&p->v64, b, hk, t)[x];
                        }
                        for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
                            double *o = out + ((b * a->H + h) * a->Nq + t) * Dv;
                            if (j == 0)
                                memset(o, 0, sizeof(double) * (size_t)Dv);
                            for (int64_t x = 0; x < Dv; x++) {
                                double s = 0;
                                for (int64_t d = 0; d < Dk; d++)
                                    s += c * attn_at64(&p->q64, b, h, t)[d] * Sj[d * Dv + x];
                                o[x] += sc * s;
                            }
                        }
                    }
                }
                if (final && sg == nseg - 1)
                    memcpy(final + (b * a->H_kv + hk) * (1 + P) * Dk * Dv, S,
                           sizeof(double) * (size_t)((1 + P) * Dk * Dv));
            }
    free(S);
}

Test(sse, sse_mask_form_equals_varlen_form, .timeout = 60)
{
    static const char *const masks[] = {"causal", "document:n=3,seed=5,causal=1"};
    for (int m = 0; m < 2; m++)
        for (int pk = 0; pk < 3; pk++) {
            attn_args a = make_args(2, 2, 1, 130, 16, 16, masks[m], PK[pk][0], PK[pk][1], 16);
            fx_problem p;
            fx_make_for(&p, K, &a, 31 + (uint64_t)(m * 3 + pk));
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            int64_t n = p.o64.B * p.o64.sb;
            double *mf = malloc(sizeof(double) * (size_t)n), *bad = malloc(sizeof(double) * (size_t)n);
            mask_form(&p, 0, mf, NULL);
            mask_form(&p, 1, bad, NULL);
            double ref = max_abs(p.o64.data, n), e64 = 0, ebad = 0;
            for (int64_t i = 0; i < n; i++) {
                e64 = fmax(e64, fabs(mf[i] - p.o64.data[i]));
                ebad = fmax(ebad, fabs(bad[i] - p.o64.data[i]));
            }
            cr_assert(e64 <= 1e-12 * ref, "%s P %lld k %lld: mask form vs recurrent varlen %.3g", masks[m],
                      (long long)PK[pk][0], (long long)PK[pk][1], e64);
            cr_assert(rel_err32(&p.o, mf, ref) <= 5e-5, "%s: kernel vs mask form %.3g", masks[m],
                      rel_err32(&p.o, mf, ref));
            /* decaying unselected partitions is another model (and P = 1 has none) */
            if (PK[pk][0] > PK[pk][1])
                cr_assert(ebad > 1e-3 * ref, "%s: token gates on unselected tokens changed nothing (%.3g)", masks[m],
                          ebad);
            free(mf);
            free(bad);
            fx_free(&p);
        }
}

/* Final states after forward: S^0..S^P of (b, hk) at the workspace start. */
static const float *final_state(const attn_ctx *ctx, int64_t b, int64_t hk, int64_t j)
{
    const attn_args *a = &ctx->args;
    int64_t P = attn_kernel_sse.input_cols(a, ATTN_IN_ROUTER), DkDv = a->D * attn_dv(a);
    return (const float *)ctx->workspace + ((b * a->H_kv + hk) * (1 + P) + j) * DkDv;
}

/* Runs the forward in its own context and checks which partition states are
 * zero: only those whose bit is in `used`. */
static void check_states(const fx_problem *p, uint32_t used)
{
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p->a, &ctx), 0, "%s", attn_last_error());
    attn_io io = {.q = p->q, .k = p->k, .v = p->v, .o = p->o, .lse = p->lse, .gate = p->gate, .router = p->router};
    cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
    int64_t P = p->router.D, DkDv = p->a.D * attn_dv(&p->a);
    for (int64_t b = 0; b < p->a.B; b++)
        for (int64_t hk = 0; hk < p->a.H_kv; hk++)
            for (int64_t j = 0; j <= P; j++) {
                const float *S = final_state(&ctx, b, hk, j);
                double m = 0;
                for (int64_t i = 0; i < DkDv; i++)
                    m = fmax(m, fabs(S[i]));
                int expect = j == 0 || (used >> (j - 1) & 1);
                cr_assert(expect ? m > 1e-3 : m == 0, "b %lld hk %lld state %lld: max %.3g, expected %s", (long long)b,
                          (long long)hk, (long long)j, m, expect ? "non-zero" : "zero");
            }
    attn_ctx_destroy(&ctx);
}

/* The 1 + P states after the sequence (workspace after forward) = the mask
 * form's: a partition without tokens in the last document ends at 0, and the
 * inert padding rows leave the states as they are. */
Test(sse, sse_final_states_match_reference, .timeout = 60)
{
    static const char *const masks[] = {"causal", "document:lens=60+50+20,causal=1"};
    for (int m = 0; m < 2; m++)
        for (int pk = 0; pk < 3; pk++) {
            attn_args a = make_args(2, 2, 1, 130, 16, 24, masks[m], PK[pk][0], PK[pk][1], 16);
            fx_problem p;
            fx_make_for(&p, K, &a, 51 + (uint64_t)(m * 3 + pk));
            if (m == 1) /* the last document (rows 110..129) never picks partition 3 */
                for (int64_t b = 0; b < 2; b++)
                    for (int64_t t = 110; t < 130 && PK[pk][0] == 4; t++)
                        attn_at(&p.router, b, 0, t)[3] = -9.0f;
            fx_ref_forward(&p);
            int64_t n = 2 * (1 + PK[pk][0]) * 16 * 24;
            double *fin = malloc(sizeof(double) * (size_t)n), *o = malloc(sizeof(double) * (size_t)(p.o64.B * p.o64.sb));
            mask_form(&p, 0, o, fin);
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
            attn_io io = {.q = p.q, .k = p.k, .v = p.v, .o = p.o, .lse = p.lse, .gate = p.gate, .router = p.router};
            cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
            const float *S = final_state(&ctx, 0, 0, 0);
            double e = 0, ref = max_abs(fin, n);
            for (int64_t i = 0; i < n; i++)
                e = fmax(e, fabs((double)S[i] - fin[i]));
            cr_assert(ref > 0.1 && e <= 5e-5 * ref, "%s P %lld k %lld: final states differ by %.3g of %.3g", masks[m],
                      (long long)PK[pk][0], (long long)PK[pk][1], e, ref);
            if (m == 1 && PK[pk][0] == 4) /* S^4 (partition 3) after the last document */
                for (int64_t b = 0; b < 2; b++)
                    cr_assert(max_abs(fin + (b * 5 + 4) * 16 * 24, 16 * 24) == 0 &&
                              final_state(&ctx, b, 0, 4)[0] == 0.0f, "partition 3 should end at 0");
            attn_ctx_destroy(&ctx);
            free(fin);
            free(o);
            fx_free(&p);
        }
}

/* Router logits forcing every token to partition 2: partitions 0, 1, 3 keep
 * zero states and O = gla(q, k) + gla(pi q, pi k) (pi = softmax weight of 2). */
Test(sse, sse_empty_buckets_keep_zero_state_and_contribution, .timeout = 60)
{
    attn_args a = make_args(1, 2, 2, 130, 16, 16, "causal", 4, 1, 16);
    fx_problem p;
    fx_make_for(&p, K, &a, 41);
    for (int64_t hk = 0; hk < 2; hk++)
        for (int64_t t = 0; t < 130; t++)
            attn_at(&p.router, 0, hk, t)[2] = 3.0f; /* others U(-2,2): pi_2 in (0.4, 1) */
    fx_ref_forward(&p);
    check_states(&p, 1u << 2);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    attn_tensor o1 = tensor_like(&p.o), o2 = tensor_like(&p.o), qs = tensor_like(&p.q), ks = tensor_like(&p.k);
    for (int64_t hk = 0; hk < 2; hk++)
        for (int64_t t = 0; t < 130; t++) {
            const float *e = attn_at(&p.router, 0, hk, t);
            double z = 0;
            for (int j = 0; j < 4; j++)
                z += exp((double)e[j] - 3.0);
            float pi = (float)(1.0 / z);
            for (int64_t d = 0; d < 16; d++) {
                attn_at(&qs, 0, hk, t)[d] *= pi; /* H == H_kv: query head hk reads KV head hk */
                attn_at(&ks, 0, hk, t)[d] *= pi;
            }
        }
    run_gla(&p, &p.q, &p.k, &o1);
    run_gla(&p, &qs, &ks, &o2);
    double ref = max_abs(p.o64.data, p.o64.B * p.o64.sb), e = 0;
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
        e = fmax(e, fabs((double)p.o.data[i] - o1.data[i] - o2.data[i]));
    cr_assert(e <= 5e-5 * ref, "sse vs gla + gla(scaled): %.3g of %.3g", e, ref);
    cr_assert(fx_err_o(&p) <= 5e-5, "err_O %.3g", fx_err_o(&p));
    attn_tensor *ts[] = {&o1, &o2, &qs, &ks};
    for (int i = 0; i < 4; i++)
        attn_free(ts[i]->data);
    fx_free(&p);
}

/* Equal logits: top-1 picks partition 0, top-2 partitions 0 and 1 (ties -> lower index). */
Test(sse, sse_ties_select_lower_partitions, .timeout = 60)
{
    for (int64_t k = 1; k <= 2; k++) {
        attn_args a = make_args(2, 2, 1, 40, 16, 16, "document:lens=25+15,causal=1", 4, k, 16);
        fx_problem p;
        fx_make_for(&p, K, &a, 43);
        for (int64_t i = 0; i < p.router.B * p.router.sb; i++)
            p.router.data[i] = 0.5f;
        fx_ref_forward(&p);
        check_states(&p, k == 1 ? 1u : 3u);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        cr_assert(fx_err_o(&p) <= 5e-5, "k %lld: err_O %.3g", (long long)k, fx_err_o(&p));
        fx_free(&p);
    }
}

static void check_gradients(int64_t N, int64_t P, int64_t k, const char *mask, int64_t chunk)
{
    attn_args a = make_args(1, 2, 1, N, 8, 12, mask, P, k, chunk);
    double err[ATTN_CHECK_GRADS];
    cr_assert_eq(check_kernel_backward(K, &a, 77 + (uint64_t)(N + P + k), err), 0, "%s", attn_last_error());
    static const char *const names[] = {"dQ", "dK", "dV", "dbeta", "dgate", "drouter"};
    for (int i = 0; i < 6; i++)
        cr_assert(err[i] <= 1e-4, "N %lld P %lld k %lld %s chunk %lld: %s err %.3g", (long long)N, (long long)P,
                  (long long)k, mask, (long long)chunk, names[i], err[i]);
}

Test(sse, sse_gradients_match_reference, .timeout = 60)
{
    check_gradients(5, 1, 1, "causal", 0);
    check_gradients(9, 4, 1, "causal", 4);
    check_gradients(9, 4, 2, "document:lens=4+5,causal=1", 2);
    check_gradients(20, 3, 2, "causal", 16); /* several chunks in the shared pass, one per bucket */
    check_gradients(40, 2, 1, "causal", 0);  /* buckets of ~20 rows: two sub-chunks */
}

Test(sse, sse_state_bytes_match_allocation, .timeout = 60)
{
    for (int64_t P = 1; P <= 4; P += 3) {
        attn_args a = make_args(2, 4, 2, 50, 16, 24, "causal", P, 1, 0);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
        cr_assert_eq(K->state_bytes(&ctx.args), (size_t)(2 * 2 * (1 + P) * 16 * 24 * 4));
        cr_assert_eq(ctx.state_bytes_used, K->state_bytes(&ctx.args));
        attn_ctx_destroy(&ctx);
    }
}

/* (1 + k) x gla's forward count; backward 2.5x; router columns = P */
Test(sse, sse_cost_model, .timeout = 60)
{
    for (int64_t k = 1; k <= 2; k++) {
        attn_args a = make_args(2, 4, 2, 1000, 64, 32, "causal", 4, k, 32), g = a;
        g.params.n = 0;
        fx_add_params(&g, "chunk=32");
        cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), (1.0 + (double)k) * attn_kernel_gla.flops(&g, ATTN_PASS_FWD),
                           1);
        cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * K->flops(&a, ATTN_PASS_FWD), 1);
        cr_assert_eq(K->input_cols(&a, ATTN_IN_ROUTER), 4);
        cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD),
                           4.0 * 2 * 1000 * (4 * 64 + 2 * (64 + 32) + 4 * 32 + 2 * (64 + 4)), 1e-3);
    }
}

static void expect_rejected(attn_args a, const char *what, const char *msg)
{
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0, "%s accepted", what);
    cr_assert(strstr(attn_last_error(), msg), "%s: message '%s' does not name %s", what, attn_last_error(), msg);
}

Test(sse, sse_rejects_bad_params_and_masks, .timeout = 60)
{
    expect_rejected(make_args(1, 2, 2, 20, 16, 16, "causal", 2, 3, 0), "topk > partitions", "topk");
    expect_rejected(make_args(1, 2, 2, 20, 16, 16, "causal", 1, 2, 0), "topk > partitions", "topk");
    static const char *const bad[] = {"partitions=0", "partitions=65", "partitions=x", "topk=0",
                                      "chunk=0",      "chunk=513",     "window=3"};
    static const char *const names[] = {"partitions", "partitions", "partitions", "topk", "chunk", "chunk", "window"};
    for (int i = 0; i < 7; i++) {
        attn_args a = fx_args_params(1, 2, 2, 20, 20, 16, "causal", 1, bad[i]);
        expect_rejected(a, bad[i], names[i]);
    }
    expect_rejected(make_args(1, 2, 2, 20, 16, 16, "full", 4, 1, 0), "mask full", "mask");
    expect_rejected(make_args(1, 2, 2, 20, 16, 16, "window:wl=4,wr=0", 4, 1, 0), "mask window", "mask");
    attn_args a = make_args(1, 2, 2, 20, 16, 16, "causal", 4, 1, 0);
    a.q_off = 3;
    expect_rejected(a, "q_off != k_off", "q_off");
    /* defaults: P = 4, k = 1 */
    attn_args d = fx_args(1, 2, 2, 20, 20, 16, "causal", 1);
    cr_assert_eq(K->input_cols(&d, ATTN_IN_ROUTER), 4);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &d, &ctx), 0, "%s", attn_last_error());
    cr_assert_eq(ctx.state_bytes_used, (size_t)(2 * 5 * 16 * 16 * 4));
    attn_ctx_destroy(&ctx);
}
