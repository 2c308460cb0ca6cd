/* AdamW against its double reference, decoupled decay, bias correction,
 * global-norm clipping (exactness and thread-count determinism), gradient
 * accumulation, the learning-rate schedule, and a quadratic it must solve. */
#include "common/attn_error.h"
#include "models/optim.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const optim_config adamw_cfg = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f,
                                       .threads = 2};

/* A blob laid out like a small model: decayed matrix, undecayed norm gains,
 * decayed matrix. */
#define N_PARAMS 1000
static const optim_range model_ranges[] = {
    {.offset = 0, .count = 600, .decay = 1},
    {.offset = 600, .count = 40, .decay = 0},
    {.offset = 640, .count = 360, .decay = 1},
};

static void fill(attn_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = attn_rng_range(r, lo, hi);
}

static double max_abs_f(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

/* max|x - ref| / max|ref| */
static double rel_err(const float *x, const double *ref, size_t n)
{
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)x[i] - ref[i]));
        m = fmax(m, fabs(ref[i]));
    }
    return m > 0.0 ? e / m : e;
}

static double norm_f64(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    return sqrt(s);
}

static void init_or_die(optim *o, size_t n, const optim_config *cfg, const optim_range *r, int nr)
{
    int rc = optim_init(o, n, cfg, r, nr);
    cr_assert_eq(rc, 0, "optim_init: %s", attn_last_error());
}

/* The same optimizer on 1 (o1) and 2 (o2) threads. */
static void init_1_and_2_threads(optim *o1, optim *o2, size_t n, const optim_range *r, int nr)
{
    optim_config c1 = adamw_cfg, c2 = adamw_cfg;
    c1.threads = 1;
    c2.threads = 2;
    init_or_die(o1, n, &c1, r, nr);
    init_or_die(o2, n, &c2, r, nr);
}

/* Each fp32 step against the double step from the same (mirrored) state,
 * over a 100-step run with a warm-up/cosine learning rate, and the two runs
 * left to drift apart for 100 steps: per-step rounding (~1e-7) accumulates
 * to ~6e-7 there (measured over 5 seeds), hence the looser bound. */
Test(optim, adamw_fp32_step_matches_double_reference_over_100_steps, .timeout = 60)
{
    enum { S = 100 };
    optim o;
    init_or_die(&o, N_PARAMS, &adamw_cfg, model_ranges, 3);
    float p[N_PARAMS], g[N_PARAMS];
    /* r: re-synced to the fp32 state before every step; d: never re-synced */
    static double pr[N_PARAMS], mr[N_PARAMS], vr[N_PARAMS], pd[N_PARAMS], md[N_PARAMS], vd[N_PARAMS],
        gr[N_PARAMS];
    attn_rng rng;
    attn_rng_seed(&rng, 11);
    fill(&rng, p, N_PARAMS, -1.0f, 1.0f);
    for (size_t i = 0; i < N_PARAMS; i++)
        pd[i] = p[i], md[i] = vd[i] = 0.0;
    const optim_schedule sched = {.kind = OPTIM_SCHED_COSINE, .peak_lr = 1e-2, .warmup_steps = 10,
                                  .total_steps = S, .min_lr_ratio = 0.1};
    double worst = 0.0;
    for (int64_t s = 0; s < S; s++) {
        /* gradients of varying scale per step, the same floats for both */
        fill(&rng, g, N_PARAMS, -1.0f, 1.0f);
        float scale = (float)(0.01 + attn_rng_uniform(&rng));
        for (size_t i = 0; i < N_PARAMS; i++) {
            gr[i] = (double)(g[i] *= scale);
            pr[i] = p[i], mr[i] = o.m[i], vr[i] = o.v[i];
        }
        float lr = (float)optim_lr_at(&sched, s);
        cr_assert_eq(optim_step(&o, p, g, lr), 0, "%s", attn_last_error());
        optim_step_ref(&adamw_cfg, model_ranges, 3, N_PARAMS, pr, gr, mr, vr, s + 1, (double)lr);
        optim_step_ref(&adamw_cfg, model_ranges, 3, N_PARAMS, pd, gr, md, vd, s + 1, (double)lr);
        double ep = rel_err(p, pr, N_PARAMS), em = rel_err(o.m, mr, N_PARAMS), ev = rel_err(o.v, vr, N_PARAMS);
        cr_assert(ep <= 1e-6 && em <= 1e-6 && ev <= 1e-6,
                  "step %lld, fp32 vs double: params %.3g, m %.3g, v %.3g (expected <= 1e-6)", (long long)s + 1,
                  ep, em, ev);
        worst = fmax(worst, fmax(ep, fmax(em, ev)));
    }
    cr_assert_eq(o.step, S);
    cr_assert_gt(worst, 0.0, "fp32 and double agree exactly: the reference is not independent");
    double ep = rel_err(p, pd, N_PARAMS), em = rel_err(o.m, md, N_PARAMS), ev = rel_err(o.v, vd, N_PARAMS);
    cr_assert(ep <= 5e-6 && em <= 5e-6 && ev <= 5e-6,
              "fp32 vs double after %d free-running steps: params %.3g, m %.3g, v %.3g (expected <= 5e-6)", S, ep,
              em, ev);
    optim_fini(&o);
}

Test(optim, adamw_step_is_bitwise_independent_of_thread_count, .timeout = 60)
{
    const size_t n = OPTIM_PARALLEL_MIN + 999; /* large enough to run threaded */
    const size_t bytes = n * sizeof(float);
    float *p1 = malloc(bytes), *p2 = malloc(bytes), *g = malloc(bytes);
    attn_rng rng;
    attn_rng_seed(&rng, 5);
    fill(&rng, p1, n, -1.0f, 1.0f);
    memcpy(p2, p1, bytes);
    const optim_range split[] = {{.offset = 0, .count = 777, .decay = 0},
                                 {.offset = 777, .count = n - 777, .decay = 1}};
    optim o1, o2;
    init_1_and_2_threads(&o1, &o2, n, split, 2);
    for (int s = 0; s < 3; s++) {
        fill(&rng, g, n, -1.0f, 1.0f);
        optim_step(&o1, p1, g, 1e-2f);
        optim_step(&o2, p2, g, 1e-2f);
    }
    cr_assert_eq(memcmp(p1, p2, bytes), 0, "params differ between 1 and 2 threads");
    cr_assert_eq(memcmp(o1.v, o2.v, bytes), 0, "second moments differ between 1 and 2 threads");
    optim_fini(&o1);
    optim_fini(&o2);
    free(p1), free(p2), free(g);
}

Test(optim, weight_decay_is_decoupled_from_the_gradient, .timeout = 60)
{
    float p[N_PARAMS], before[N_PARAMS], g[N_PARAMS] = {0};
    attn_rng rng;
    attn_rng_seed(&rng, 3);
    fill(&rng, p, N_PARAMS, -2.0f, 2.0f);
    optim o;
    init_or_die(&o, N_PARAMS, &adamw_cfg, model_ranges, 3);
    const float lr = 0.05f;
    for (int s = 0; s < 5; s++) {
        memcpy(before, p, sizeof p);
        cr_assert_eq(optim_step(&o, p, g, lr), 0);
        for (size_t i = 0; i < N_PARAMS; i++) {
            int decayed = i < 600 || i >= 640;
            /* L2 through the gradient would make Adam move every decayed
             * parameter by ~lr whatever its size; decoupled decay shrinks
             * it by lr*wd*p, to float rounding of p */
            double expect = decayed ? (double)before[i] - (double)lr * adamw_cfg.weight_decay * before[i]
                                    : (double)before[i];
            cr_assert_leq(fabs((double)p[i] - expect), 2.0 * 0x1.0p-24 * fabs((double)before[i]),
                          "step %d param %zu: %.9g -> %.9g, expected %.9g", s, i, (double)before[i],
                          (double)p[i], expect);
        }
    }
    cr_assert_eq(max_abs_f(o.m, N_PARAMS), 0.0, "first moments must stay 0 with zero gradients");
    cr_assert_eq(max_abs_f(o.v, N_PARAMS), 0.0, "second moments must stay 0 with zero gradients");
    optim_fini(&o);
}

Test(optim, bias_correction_makes_the_first_update_lr_times_sign_g, .timeout = 60)
{
    float p[N_PARAMS], p0[N_PARAMS], g[N_PARAMS];
    attn_rng rng;
    attn_rng_seed(&rng, 4);
    fill(&rng, p, N_PARAMS, -1.0f, 1.0f);
    for (size_t i = 0; i < N_PARAMS; i++) /* |g| in [0.01, 1], >> eps */
        g[i] = (attn_rng_uniform(&rng) < 0.5 ? -1.0f : 1.0f) * attn_rng_range(&rng, 0.01f, 1.0f);
    memcpy(p0, p, sizeof p);
    optim_config c = adamw_cfg;
    c.weight_decay = 0.0f;
    optim o;
    init_or_die(&o, N_PARAMS, &c, NULL, 0);
    const float lr = 1e-3f;
    cr_assert_eq(optim_step(&o, p, g, lr), 0);
    for (size_t i = 0; i < N_PARAMS; i++) {
        double moved = (double)p0[i] - (double)p[i], expect = (g[i] > 0 ? 1.0 : -1.0) * lr;
        /* without bias correction it would be lr (1-b1)/sqrt(1-b2) = 3.16 lr */
        cr_assert_leq(fabs(moved - expect), 1e-3 * lr, "param %zu moved %.9g, expected %.9g", i, moved, expect);
    }
    optim_fini(&o);
}

Test(optim, clipping_scales_the_global_norm_to_max_norm, .timeout = 60)
{
    const size_t n = 3 * OPTIM_NORM_BLOCK + 77;
    float *g = malloc(n * sizeof(float)), *keep = malloc(n * sizeof(float));
    attn_rng rng;
    attn_rng_seed(&rng, 6);
    fill(&rng, g, n, -1.0f, 1.0f);
    optim o;
    init_or_die(&o, n, &adamw_cfg, NULL, 0);
    double before = norm_f64(g, n), reported = 0.0;
    cr_assert_gt(before, 10.0);
    cr_assert_eq(optim_clip_grad_norm(&o, g, 1.5, &reported), 0, "%s", attn_last_error());
    cr_assert_leq(fabs(reported - before), 1e-12 * before, "reported %.17g, expected %.17g", reported, before);
    double after = norm_f64(g, n);
    cr_assert_leq(fabs(after - 1.5), 1e-6 * 1.5, "norm after clipping %.17g, expected 1.5", after);

    /* below the threshold: untouched, bit for bit */
    memcpy(keep, g, n * sizeof(float));
    cr_assert_eq(optim_clip_grad_norm(&o, g, 2.0, &reported), 0);
    cr_assert_eq(memcmp(keep, g, n * sizeof(float)), 0, "a gradient below max_norm was modified");
    optim_fini(&o);
    free(g), free(keep);
}

Test(optim, clipping_rejects_a_non_finite_norm_and_leaves_grads_untouched, .timeout = 60)
{
    float g[64], keep[64];
    for (int i = 0; i < 64; i++)
        g[i] = (float)i;
    g[17] = NAN;
    memcpy(keep, g, sizeof g);
    optim o;
    init_or_die(&o, 64, &adamw_cfg, NULL, 0);
    int rc = optim_clip_grad_norm(&o, g, 1.0, NULL);
    cr_assert_eq(rc, ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "finite gradient norm"), "message: %s", attn_last_error());
    cr_assert_eq(memcmp(keep, g, sizeof g), 0);
    optim_fini(&o);
}

Test(optim, grad_norm_is_bitwise_identical_with_1_and_2_threads, .timeout = 60)
{
    const size_t n = 7 * OPTIM_NORM_BLOCK + 1234;
    float *g = malloc(n * sizeof(float));
    attn_rng rng;
    attn_rng_seed(&rng, 8);
    for (size_t i = 0; i < n; i++) /* magnitudes over many binades, so order matters */
        g[i] = attn_rng_range(&rng, -1.0f, 1.0f) * powf(2.0f, (float)(i % 40) - 20.0f);
    optim o1, o2;
    init_1_and_2_threads(&o1, &o2, n, NULL, 0);
    double a = optim_grad_norm(&o1, g), b = optim_grad_norm(&o2, g), ref = norm_f64(g, n);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "1 thread %.17g, 2 threads %.17g", a, b);
    cr_assert_leq(fabs(a - ref), 1e-12 * ref, "norm %.17g, plain double sum %.17g", a, ref);
    optim_fini(&o1);
    optim_fini(&o2);
    free(g);
}

Test(optim, accumulated_then_scaled_gradient_is_the_mean, .timeout = 60)
{
    enum { K = 4, N = 300 };
    float acc[N], micro[K][N];
    attn_rng rng;
    attn_rng_seed(&rng, 9);
    for (int k = 0; k < K; k++)
        fill(&rng, micro[k], N, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        acc[i] = 123.0f; /* stale values from the previous step */
    optim_grad_zero(acc, N, 2);
    for (int k = 0; k < K; k++) /* what backward does: add into the blob */
        for (int i = 0; i < N; i++)
            acc[i] += micro[k][i];
    optim_grad_scale(acc, N, 1.0f / K, 2);
    for (int i = 0; i < N; i++) {
        double mean = 0.0;
        for (int k = 0; k < K; k++)
            mean += micro[k][i];
        mean /= K;
        cr_assert_leq(fabs(acc[i] - mean), 1e-6, "element %d: %.9g, mean %.9g", i, (double)acc[i], mean);
    }
}

Test(optim, warmup_reaches_peak_at_warmup_steps_and_cosine_reaches_min_at_total, .timeout = 60)
{
    const double peak = 3e-3, ratio = 0.1;
    optim_schedule s = {.kind = OPTIM_SCHED_COSINE, .peak_lr = peak, .warmup_steps = 10, .total_steps = 110,
                        .min_lr_ratio = ratio};
    cr_assert_eq(optim_schedule_check(&s), 0, "%s", attn_last_error());
    cr_assert_float_eq(optim_lr_at(&s, 0), peak / 10, 1e-18);
    for (int64_t t = 1; t < 10; t++)
        cr_assert_gt(optim_lr_at(&s, t), optim_lr_at(&s, t - 1), "warm-up not increasing at %lld", (long long)t);
    cr_assert_eq(optim_lr_at(&s, 9), peak, "step warmup-1 = %.17g, expected the peak", optim_lr_at(&s, 9));
    cr_assert_eq(optim_lr_at(&s, 10), peak, "decay must start from the peak");
    for (int64_t t = 11; t <= 110; t++)
        cr_assert_lt(optim_lr_at(&s, t), optim_lr_at(&s, t - 1), "cosine not decreasing at %lld", (long long)t);
    cr_assert_float_eq(optim_lr_at(&s, 60), (peak + ratio * peak) / 2, 1e-15, "cosine midpoint");
    cr_assert_float_eq(optim_lr_at(&s, 110), ratio * peak, 1e-18);
    cr_assert_eq(optim_lr_at(&s, 500), ratio * peak, "past total the floor holds");

    s.kind = OPTIM_SCHED_LINEAR;
    cr_assert_float_eq(optim_lr_at(&s, 35), peak - (peak - ratio * peak) * 0.25, 1e-15);
    for (int64_t t = 11; t <= 110; t++)
        cr_assert_lt(optim_lr_at(&s, t), optim_lr_at(&s, t - 1), "linear not decreasing at %lld", (long long)t);
    cr_assert_float_eq(optim_lr_at(&s, 110), ratio * peak, 1e-18);

    s.kind = OPTIM_SCHED_CONSTANT;
    s.warmup_steps = 0;
    for (int64_t t = 0; t < 300; t += 37)
        cr_assert_eq(optim_lr_at(&s, t), peak);
}

Test(optim, schedule_and_ranges_are_validated, .timeout = 60)
{
    optim_schedule s = {.kind = OPTIM_SCHED_COSINE, .peak_lr = 1e-3, .warmup_steps = 100, .total_steps = 100,
                        .min_lr_ratio = 0.0};
    cr_assert_eq(optim_schedule_check(&s), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "total_steps > warmup_steps"), "%s", attn_last_error());
    s.total_steps = 200;
    s.min_lr_ratio = 1.5;
    cr_assert_eq(optim_schedule_check(&s), ATTN_EINVAL);

    const optim_range gap[] = {{.offset = 0, .count = 10, .decay = 1}, {.offset = 12, .count = 8, .decay = 0}};
    optim o;
    cr_assert_eq(optim_init(&o, 20, &adamw_cfg, gap, 2), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "range 1 to start at offset 10"), "%s", attn_last_error());
    const optim_range short_cover[] = {{.offset = 0, .count = 10, .decay = 1}};
    cr_assert_eq(optim_init(&o, 20, &adamw_cfg, short_cover, 1), ATTN_EINVAL);
    optim_config bad = adamw_cfg;
    bad.beta2 = 1.0f;
    cr_assert_eq(optim_init(&o, 20, &bad, NULL, 0), ATTN_EINVAL);
}

/* f(p) = 1/2 sum a_i (p_i - c_i)^2, curvatures over a decade. */
static double quadratic(const float *p, const float *a, const float *c, float *grad, size_t n)
{
    double f = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)p[i] - c[i];
        f += 0.5 * a[i] * d * d;
        grad[i] = (float)(a[i] * d);
    }
    return f;
}

Test(optim, adamw_minimises_a_quadratic, .timeout = 60)
{
    enum { N = 256, STEPS = 400 };
    float p[N] = {0}, a[N], c[N], g[N];
    attn_rng rng;
    attn_rng_seed(&rng, 12);
    fill(&rng, a, N, 0.5f, 5.0f);
    fill(&rng, c, N, -1.0f, 1.0f);
    optim_config cfg = adamw_cfg;
    cfg.weight_decay = 0.0f; /* decay would move the minimum towards 0 */
    optim o;
    init_or_die(&o, N, &cfg, NULL, 0);
    const optim_schedule s = {.kind = OPTIM_SCHED_COSINE, .peak_lr = 0.05, .warmup_steps = 10,
                              .total_steps = STEPS, .min_lr_ratio = 0.01};
    double f0 = quadratic(p, a, c, g, N), f = f0;
    for (int64_t t = 0; t < STEPS; t++) {
        cr_assert_eq(optim_step(&o, p, g, (float)optim_lr_at(&s, t)), 0);
        f = quadratic(p, a, c, g, N);
    }
    cr_assert_lt(f, 1e-3 * f0, "loss %.6g after %d steps, started at %.6g (expected < 1e-3 of it)", f, STEPS, f0);
    optim_fini(&o);
}
