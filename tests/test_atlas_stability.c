/* `atlas` stays bounded at its defaults on the harness's random gates: the
 * memory after 4096 tokens is finite and below the bound a non-expanding
 * error feedback obeys, and the fidelity `attnbench check` reports is finite
 * and of order one (docs/kernels/atlas.md, Stability). */
#include "harness/measure/check.h"
#include "harness/measure/problem.h"
#include "kernels/atlas/atlas.h"

#include <criterion/criterion.h>
#include <math.h>

#define K (&attn_kernel_atlas)

static double logistic(double z) { return 1.0 / (1.0 + exp(-z)); }

/* With unit features each step's gradient is G_t = W H_t - B_t, H_t the
 * window loss's curvature (eigenvalues in [0, 2 gamma]) and
 * |B_t|_F <= 2 max_i gamma_i |v_i| over the window. When the error feedback
 * W -> W (alpha I - eta H) does not expand, only the data terms B move the
 * memory, so |W_t|_F <= sum_s eta_s m_s with m_s = theta_s m_{s-1} + |B_s|:
 * every data term added, aligned, never forgotten. A diverging memory passes
 * it geometrically. */
static double data_term_bound(const problem *p, int64_t b, int64_t hk, int64_t window)
{
    double m = 0, bound = 0;
    for (int64_t t = 0; t < p->a.Nk; t++) {
        double data = 0;
        for (int64_t i = t - window + 1 > 0 ? t - window + 1 : 0; i <= t; i++) {
            double v2 = 0;
            for (int64_t e = 0; e < p->v.D; e++)
                v2 += (double)attn_at(&p->v, b, hk, i)[e] * attn_at(&p->v, b, hk, i)[e];
            data = fmax(data, 2.0 * logistic(attn_at(&p->router, b, hk, i)[1]) * sqrt(v2));
        }
        m = logistic(attn_at(&p->router, b, hk, t)[0]) * m + data;
        bound += attn_at(&p->beta, b, hk, t)[0] * m;
    }
    return bound;
}

Test(atlas_stability, memory_stays_bounded_at_defaults_with_random_gates, .timeout = 240)
{
    const int64_t N = 4096, D = 16;
    attn_args a = {.B = 1, .H = 2, .H_kv = 2, .Nq = N, .Nk = N, .D = D, .threads = 2,
                   .mask = attn_mask_default(ATTN_MASK_CAUSAL)};
    attn_args_defaults(&a);
    problem p;
    cr_assert_eq(problem_make(&p, K, &a, 7, 0), 0, "%s", attn_last_error());
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
    int rc = 0;
    int64_t window = attn_param_int(&p.a, K->params, "window", &rc);
    size_t floats = ctx.state_bytes_used / sizeof(float), per_head = floats / (size_t)a.H_kv;
    const float *state = ctx.workspace; /* [H; S] per KV head, H = W^T first */
    for (int64_t hk = 0; hk < a.H_kv; hk++) {
        double w2 = 0;
        for (size_t x = 0; x < per_head / 2; x++) {
            double w = state[(size_t)hk * per_head + x];
            cr_assert(isfinite(w), "head %lld: memory entry %zu is %g", (long long)hk, x, w);
            w2 += w * w;
        }
        double bound = data_term_bound(&p, 0, hk, window);
        cr_log_info("head %lld: |W|_F %.4g after %lld tokens, data-term bound %.4g", (long long)hk, sqrt(w2),
                    (long long)N, bound);
        cr_assert(sqrt(w2) <= bound, "head %lld: |W|_F %.4g above the data-term bound %.4g", (long long)hk,
                  sqrt(w2), bound);
    }
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
        cr_assert(isfinite(p.o.data[i]), "output %lld is %g", (long long)i, p.o.data[i]);
    attn_ctx_destroy(&ctx);
    problem_free(&p);
}

/* `attnbench check`'s fidelity problem (N 1024, D 64, H 2, defaults): the read
 * of an untrained memory is far from softmax attention, but finite and of
 * order one, with outputs pointing the oracle's way on average. */
Test(atlas_stability, check_fidelity_is_finite_and_of_order_one, .timeout = 240)
{
    attn_args a = {.B = 1, .H = 2, .H_kv = 2, .Nq = 1024, .Nk = 1024, .D = 64, .threads = 2,
                   .mask = attn_mask_default(ATTN_MASK_CAUSAL)};
    attn_args_defaults(&a);
    static const fid_inputs families[] = {FID_GAUSSIAN, FID_PEAKED};
    for (int f = 0; f < 2; f++) {
        fid_metrics m;
        cr_assert_eq(check_kernel_fidelity(K, &a, families[f], 1, &m), 0, "%s", attn_last_error());
        cr_log_info("%s: rel_fro_err %.4f cosine_mean %.4f", fid_inputs_names[families[f]], m.rel_fro, m.cos_mean);
        cr_assert(isfinite(m.rel_fro) && m.rel_fro < 1.5, "%s: rel_fro_err %.4g", fid_inputs_names[families[f]],
                  m.rel_fro);
        cr_assert(m.cos_mean > 0, "%s: cosine_mean %.4g", fid_inputs_names[families[f]], m.cos_mean);
    }
}
