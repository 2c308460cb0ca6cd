/* Pathfinder's generator against the rules of snakes2.py, the script LRA's
 * Pathfinder data was made with (docs/tasks.md). Each expected value is
 * computed from the rule itself -- the cos^2 turn law, the uniform first
 * start, the exact seed distance, the markers by label, LRA's arguments per
 * resolution -- and compared with thousands of generated scenes. */
#include "common/attn_error.h"
#include "tasks/pathfinder.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static void config(const char *params, pf_config *c)
{
    param_bag p;
    char diff[16];
    memset(&p, 0, sizeof p);
    cr_assert_eq(param_bag_add_list(&p, params), 0, "%s", attn_last_error());
    cr_assert_eq(pf_config_parse(&p, "pathfinder", 32, c, diff), 0, "%s", attn_last_error());
}

/* Scene i of a fixed stream with the given label. */
static void scene(const pf_config *c, int64_t i, int label, pf_scene *s)
{
    attn_rng r;
    pf_example_rng(&r, 41, TASK_TRAIN, i);
    cr_assert_eq(pf_scene_generate(c, &r, label, s), 0, "%s", attn_last_error());
}

static double heading(const pf_seg *p) { return atan2(p->y1 - p->y0, p->x1 - p->x0); }

static double wrap(double a) { return a > PI ? a - 2 * PI : a < -PI ? a + 2 * PI : a; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov distance of the n samples x (sorted here) from the CDF `cdf`. */
static double ks_distance(double *x, int n, double (*cdf)(double, const void *), const void *arg)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double d = 0;
    for (int i = 0; i < n; i++) {
        double f = cdf(x[i], arg);
        d = fmax(d, fmax(fabs(f - (double)i / n), fabs((double)(i + 1) / n - f)));
    }
    return d;
}

/* The 0.1 % critical value of the one-sample KS distance. */
static double ks_critical(int n) { return 1.95 / sqrt(n); }

/* ---- LRA's arguments per resolution ---- */

Test(pathfinder_rules, defaults_per_resolution_are_the_tfds_builders_arguments, .timeout = 30)
{
    /* lra_benchmarks/data/pathfinder.py lists these over snakes2_wrapper's
     * defaults (paddle_length 5, padding 22, seed_distance 27, paddle
     * contrast 1); distractors are num_distractor_snakes = budget //
     * (contour_length // 3) at contour length 14 */
    static const struct {
        const char *params;
        double paddle_len, thickness, margin_lo, margin_hi, marker_r, seed_dist, continuity, snake_c, paddle_c, pad;
        int distractors;
    } lra[] = {
        {"res=32", 2, 0.5, 1, 1, 1.5, 7, 1.0, 2, 0.75, 1, 20 / 4},
        {"res=64", 5, 1, 1, 1, 2.5, 12, 1.8, 0.8, 1, 1, 22 / 4},
        {"res=128", 5, 1.5, 2, 3, 3, 20, 1.8, 0.9, 1, 1, 35 / 4},
        {"res=256", 5, 2, 3, 3, 5, 27, 1.8, 1.0, 1, 22, 30 / 4},
    };
    for (size_t k = 0; k < sizeof lra / sizeof lra[0]; k++) {
        pf_config c;
        config(lra[k].params, &c);
        cr_assert(c.paddle_len == lra[k].paddle_len && c.thickness == lra[k].thickness &&
                      c.margin_lo == lra[k].margin_lo && c.margin_hi == lra[k].margin_hi &&
                      c.marker_r == lra[k].marker_r && c.seed_dist == lra[k].seed_dist &&
                      c.continuity == lra[k].continuity && c.snake_contrast == lra[k].snake_c &&
                      c.paddle_contrast == lra[k].paddle_c && c.pad == lra[k].pad,
                  "[%s] a knob differs from the builder's arguments", lra[k].params);
        cr_assert_eq(c.contour_len, 14);
        cr_assert_eq(c.distractor_len, 4);
        cr_assert_eq(c.n_distractors, lra[k].distractors, "[%s]", lra[k].params);
        cr_assert_eq(c.negatives, PF_NEG_SNAKES2, "the reference's negatives are the default");
    }
}

/* ---- the two targets' starts ---- */

Test(pathfinder_rules, targets_start_exactly_seed_dist_apart_the_first_in_the_centre_square, .timeout = 60)
{
    const char *const cfgs[] = {"", "difficulty=easy", "res=16 difficulty=easy", "res=64 difficulty=easy",
                                "res=128 difficulty=easy distractors=0"};
    pf_scene *s = malloc(sizeof *s);
    for (int q = 0; q < 5; q++) {
        pf_config c;
        config(cfgs[q], &c);
        double lo, hi;
        pf_first_start_zone(&c, &lo, &hi);
        cr_assert_eq(lo, fmax(c.pad, 2 * c.seed_dist));
        for (int i = 0; i < 400; i++) {
            scene(&c, i, i % 2, s);
            const pf_seg *a = &s->paddle[s->first[0]], *b = &s->paddle[s->first[1]];
            double d = hypot(a->x0 - b->x0, a->y0 - b->y0);
            cr_assert(fabs(d - c.seed_dist) < 1e-9, "[%s] scene %d: starts %.6f apart, seed_dist %g", cfgs[q], i, d,
                      c.seed_dist);
            /* the first paddle of the first target lies in the square */
            cr_assert(fmin(a->x0, a->x1) >= lo - 1e-9 && fmax(a->x0, a->x1) <= hi + 1e-9 &&
                          fmin(a->y0, a->y1) >= lo - 1e-9 && fmax(a->y0, a->y1) <= hi + 1e-9,
                      "[%s] scene %d: first paddle (%g, %g)-(%g, %g) outside [%g, %g]^2", cfgs[q], i, a->x0, a->y0,
                      a->x1, a->y1, lo, hi);
        }
    }
    free(s);
}

static double uniform01_cdf(double x, const void *arg)
{
    (void)arg;
    return fmax(0, fmin(1, x));
}

Test(pathfinder_rules, first_start_is_uniform_where_its_paddle_fits_the_centre_square, .timeout = 60)
{
    /* snakes2 draws a heading of whole degrees, then the start uniformly among
     * the points of the square whose paddle stays in it: a rectangle
     * [lo + max(0, -dx), hi - max(0, dx)] x (same in y), (dx, dy) the paddle.
     * The start's place in that rectangle must be U(0, 1) in x and in y; its
     * place in the whole square (a plain uniform start) is told apart. 32
     * easy: the square is [14, 18], a layout seldom restarts. */
    pf_config c;
    config("difficulty=easy distractors=0", &c);
    double lo, hi;
    pf_first_start_zone(&c, &lo, &hi);
    enum { N = 6000 };
    double *u = malloc(2 * N * sizeof *u), *w = malloc(2 * N * sizeof *w);
    pf_scene *s = malloc(sizeof *s);
    for (int i = 0; i < N; i++) {
        scene(&c, i, i % 2, s);
        const pf_seg *g = &s->paddle[0];
        double deg = heading(g) * 180 / PI;
        cr_assert(fabs(deg - rint(deg)) < 1e-6, "scene %d: heading %.9f degrees is not whole", i, deg);
        double dx = g->x1 - g->x0, dy = g->y1 - g->y0;
        u[2 * i] = (g->x0 - lo - fmax(0, -dx)) / (hi - lo - fabs(dx));
        u[2 * i + 1] = (g->y0 - lo - fmax(0, -dy)) / (hi - lo - fabs(dy));
        w[2 * i] = (g->x0 - lo) / (hi - lo), w[2 * i + 1] = (g->y0 - lo) / (hi - lo);
    }
    double d = ks_distance(u, 2 * N, uniform01_cdf, NULL), d_plain = ks_distance(w, 2 * N, uniform01_cdf, NULL);
    cr_log_info("first start: KS %.4f from the rule, %.4f from a plain uniform start (critical %.4f)", d, d_plain,
                ks_critical(2 * N));
    cr_assert(d < ks_critical(2 * N), "first start: KS distance %.4f from the rule (critical %.4f)", d,
              ks_critical(2 * N));
    cr_assert(d_plain > 1.5 * ks_critical(2 * N), "a plain uniform start is not told apart: KS %.4f", d_plain);
    free(u);
    free(w);
    free(s);
}

/* ---- turns ---- */

static double cos2_turn_cdf(double t, const void *arg)
{
    double c = *(const double *)arg, u = fmax(-PI / 2, fmin(PI / 2, c * t));
    return (u + PI / 2 + sin(2 * u) / 2) / PI; /* integral of cos^2 on (-pi/2, u], over pi/2 */
}

static double uniform_turn_cdf(double t, const void *arg)
{
    double half = (PI / 4) / *(const double *)arg; /* the previous generator's U(-pi/4c, pi/4c) */
    return fmax(0, fmin(1, (t + half) / (2 * half)));
}

Test(pathfinder_rules, turn_sampler_follows_the_cos2_law, .timeout = 30)
{
    enum { N = 20000 };
    static const double cont[] = {1.0, 1.8, 0.6};
    double *t = malloc(N * sizeof *t);
    for (int q = 0; q < 3; q++) {
        attn_rng r;
        attn_rng_seed(&r, 17 + (uint64_t)q);
        double most = 0;
        for (int i = 0; i < N; i++)
            t[i] = pf_turn_sample(cont[q], &r), most = fmax(most, fabs(t[i]));
        cr_assert(most <= fmin(PI, PI / (2 * cont[q])), "continuity %g: a turn of %g rad", cont[q], most);
        double d = ks_distance(t, N, cos2_turn_cdf, &cont[q]);
        cr_assert(d < ks_critical(N), "continuity %g: KS distance %.4f from cos^2 (critical %.4f)", cont[q], d,
                  ks_critical(N));
    }
    free(t);
}

Test(pathfinder_rules, turns_in_generated_contours_follow_the_cos2_law, .timeout = 60)
{
    /* a canvas far larger than the contours, so that walls and neighbours
     * seldom refuse a turn: the turns between consecutive paddles are the
     * law's draws; the previous generator's uniform turns are told apart */
    const char *const cfgs[] = {"res=256 difficulty=easy paddle_len=2 margin=1 seed_dist=40 distractors=0 "
                                "continuity=1",
                                "res=256 difficulty=easy paddle_len=2 margin=1 seed_dist=40 distractors=0 "
                                "continuity=1.8"};
    enum { SCENES = 1000 };
    double *t = malloc(SCENES * 10 * sizeof *t);
    pf_scene *s = malloc(sizeof *s);
    for (int q = 0; q < 2; q++) {
        pf_config c;
        config(cfgs[q], &c);
        int n = 0;
        for (int i = 0; i < SCENES; i++) {
            scene(&c, i, i % 2, s);
            for (int k = 0; k < 2; k++)
                for (int32_t p = s->first[k] + 1; p < s->first[k + 1]; p++)
                    t[n++] = wrap(heading(&s->paddle[p]) - heading(&s->paddle[p - 1]));
        }
        double d = ks_distance(t, n, cos2_turn_cdf, &c.continuity);
        double d_uniform = ks_distance(t, n, uniform_turn_cdf, &c.continuity);
        cr_log_info("continuity %g: %d turns, KS %.4f from cos^2, %.4f from uniform", c.continuity, n, d, d_uniform);
        cr_assert(d < ks_critical(n), "continuity %g: KS distance %.4f from cos^2 (critical %.4f)", c.continuity, d,
                  ks_critical(n));
        cr_assert(d_uniform > 3 * ks_critical(n), "continuity %g: uniform turns not told apart (KS %.4f)",
                  c.continuity, d_uniform);
    }
    free(t);
    free(s);
}

/* ---- paddles, gaps, clearances ---- */

static int snake_of(const pf_scene *s, int32_t paddle)
{
    int k = 0;
    while (paddle >= s->first[k + 1])
        k++;
    return k;
}

Test(pathfinder_rules, paddles_are_paddle_len_and_gaps_two_margins_turning_at_the_pivot, .timeout = 60)
{
    const char *const cfgs[] = {"", "res=128 difficulty=easy", "res=16 difficulty=easy"};
    pf_scene *s = malloc(sizeof *s);
    for (int q = 0; q < 3; q++) {
        pf_config c;
        config(cfgs[q], &c);
        double lo = c.pad + c.thickness / 2;
        for (int i = 0; i < 100; i++) {
            scene(&c, i, i % 2, s);
            double m = s->margin;
            cr_assert(m >= c.margin_lo && m <= c.margin_hi && m == floor(m - c.margin_lo) + c.margin_lo);
            cr_assert(s->n_snakes >= 2 && s->n_snakes <= 2 + c.n_distractors);
            for (int32_t k = 0; k < s->n_snakes; k++) {
                cr_assert_eq(s->first[k + 1] - s->first[k], k < 2 ? c.contour_len : c.distractor_len);
                for (int32_t p = s->first[k]; p < s->first[k + 1]; p++) {
                    const pf_seg *g = &s->paddle[p];
                    cr_assert(fabs(hypot(g->x1 - g->x0, g->y1 - g->y0) - c.paddle_len) < 1e-9);
                    if (k != 1 || p != s->first[1]) /* the second target's first paddle: only in the image */
                        cr_assert(fmin(g->x0, g->x1) >= lo + m - 1e-9 && fmax(g->x0, g->x1) <= c.res - lo - m + 1e-9 &&
                                      fmin(g->y0, g->y1) >= lo + m - 1e-9 &&
                                      fmax(g->y0, g->y1) <= c.res - lo - m + 1e-9,
                                  "[%s] paddle %d enters the padding", cfgs[q], p);
                    if (p == s->first[k])
                        continue;
                    const pf_seg *f = &s->paddle[p - 1];
                    double h0 = heading(f), h1 = heading(g);
                    double px = f->x1 + m * cos(h0) + m * cos(h1), py = f->y1 + m * sin(h0) + m * sin(h1);
                    cr_assert(hypot(g->x0 - px, g->y0 - py) < 1e-9, "[%s] paddle %d does not start 2 margins on",
                              cfgs[q], p);
                }
            }
            /* strokes of different contours keep 2 margins between centre lines */
            for (int32_t a = 0; a < s->n_paddles; a++)
                for (int32_t b = a + 1; b < s->n_paddles; b++)
                    if (snake_of(s, a) != snake_of(s, b))
                        cr_assert(pf_seg_seg_dist(&s->paddle[a], &s->paddle[b]) >= 2 * m - 1e-9,
                                  "[%s] paddles %d and %d too close", cfgs[q], a, b);
        }
    }
    free(s);
}

/* ---- markers and labels ---- */

/* Which target end (2 * target + 0 for its start, + 1 for its tip) sits at (x, y); -1 if none. */
static int end_at(const pf_scene *s, double x, double y)
{
    for (int32_t k = 0; k < 2; k++) {
        const pf_seg *a = &s->paddle[s->first[k]], *b = &s->paddle[s->first[k + 1] - 1];
        if (hypot(a->x0 - x, a->y0 - y) < 1e-12)
            return 2 * k;
        if (hypot(b->x1 - x, b->y1 - y) < 1e-12)
            return 2 * k + 1;
    }
    return -1;
}

Test(pathfinder_rules, markers_sit_on_a_start_and_a_tip_as_the_label_says, .timeout = 60)
{
    /* snakes2: the start of one target and the tip of the same (1) or the
     * other (0); matched: the first target's start, and its tip (1) or the
     * second target's start (0) */
    const char *const cfgs[] = {"", "difficulty=easy", "res=16 difficulty=easy", "negatives=matched difficulty=easy"};
    pf_scene *s = malloc(sizeof *s);
    for (int q = 0; q < 4; q++) {
        pf_config c;
        config(cfgs[q], &c);
        int origin_first = 0;
        for (int i = 0; i < 400; i++) {
            int label = i % 2;
            scene(&c, i, label, s);
            int e0 = end_at(s, s->marker_x[0], s->marker_y[0]), e1 = end_at(s, s->marker_x[1], s->marker_y[1]);
            cr_assert(e0 >= 0 && e1 >= 0, "[%s] markers not on target ends (%d, %d)", cfgs[q], e0, e1);
            cr_assert_eq(s->marker_snake[0], e0 / 2);
            cr_assert_eq(s->marker_snake[1], e1 / 2);
            if (c.negatives == PF_NEG_MATCHED) {
                cr_assert_eq(e0, 0);
                cr_assert_eq(e1, label ? 1 : 2, "[%s] label %d: second marker on end %d", cfgs[q], label, e1);
                continue;
            }
            cr_assert(e0 % 2 == 0 && e1 % 2 == 1, "[%s] expected a start and a tip, found ends %d, %d", cfgs[q], e0,
                      e1);
            cr_assert_eq(e0 / 2 == e1 / 2, label, "[%s] label %d: ends %d and %d", cfgs[q], label, e0, e1);
            origin_first += e0 == 0;
        }
        if (c.negatives == PF_NEG_SNAKES2) /* the marked start is either target's, at random */
            cr_assert(origin_first > 150 && origin_first < 250, "[%s] %d of 400", cfgs[q], origin_first);
    }
    free(s);
}

Test(pathfinder_rules, contours_do_not_depend_on_the_label, .timeout = 30)
{
    const char *const cfgs[] = {"", "negatives=matched"};
    pf_scene *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    for (int q = 0; q < 2; q++) {
        pf_config c;
        config(cfgs[q], &c);
        for (int i = 0; i < 50; i++) {
            scene(&c, i, 0, a);
            scene(&c, i, 1, b);
            cr_assert(a->n_paddles == b->n_paddles && a->n_snakes == b->n_snakes);
            cr_assert_eq(memcmp(a->paddle, b->paddle, (size_t)a->n_paddles * sizeof a->paddle[0]), 0,
                         "[%s] scene %d: the label moved a paddle", cfgs[q], i);
        }
    }
    free(a);
    free(b);
}

/* Marker distances of n scenes per label of config `params`: d[0] label 0, d[1] label 1. */
static void marker_distances(const char *params, int n, double *d0, double *d1)
{
    pf_config c;
    config(params, &c);
    pf_scene *s = malloc(sizeof *s);
    for (int i = 0; i < 2 * n; i++) {
        scene(&c, i, i % 2, s);
        (i % 2 ? d1 : d0)[i / 2] = hypot(s->marker_x[0] - s->marker_x[1], s->marker_y[0] - s->marker_y[1]);
    }
    free(s);
}

static double mean_square(const double *d, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m += d[i] * d[i] / n;
    return m;
}

Test(pathfinder_rules, label0_marker_distance_adds_the_seed_distance_in_a_random_direction, .timeout = 60)
{
    /* snakes2, label 0: tip(B) - start(A) = (start(B) - start(A)) + (tip(B) -
     * start(B)), the first of length seed_dist in a uniform direction
     * independent of the second, which has the law of label 1's tip(A) -
     * start(A). So E[d0^2] - E[d1^2] = seed_dist^2 where the contours do not
     * meet walls or each other (a large canvas, starts 40 apart, contours of
     * 6 x 4 px). Matched negatives: the difference is 0. */
    enum { N = 3000 };
    const char *base = "res=256 difficulty=easy paddle_len=2 margin=1 seed_dist=40 distractors=0";
    char matched[160];
    snprintf(matched, sizeof matched, "%s negatives=matched", base);
    double *d0 = malloc(N * sizeof *d0), *d1 = malloc(N * sizeof *d1);
    marker_distances(base, N, d0, d1);
    double gap = mean_square(d0, N) - mean_square(d1, N);
    cr_log_info("snakes2: E[d0^2] - E[d1^2] = %.1f, seed_dist^2 = 1600", gap);
    cr_assert(fabs(gap - 1600) < 100, "snakes2: E[d0^2] - E[d1^2] = %.1f, expected seed_dist^2 = 1600", gap);
    marker_distances(matched, N, d0, d1);
    gap = mean_square(d0, N) - mean_square(d1, N);
    cr_assert(fabs(gap) < 25, "matched: E[d0^2] - E[d1^2] = %.1f, expected 0", gap);
    free(d0);
    free(d1);
}

/* Best single-threshold accuracy of "label 1 iff distance < t" or its
 * opposite, over d0 (label 0) and d1 (label 1), n each. */
static double best_threshold(const double *d0, const double *d1, int n)
{
    double *all = malloc(2 * (size_t)n * sizeof *all);
    memcpy(all, d0, (size_t)n * sizeof *all);
    memcpy(all + n, d1, (size_t)n * sizeof *all);
    double *s0 = malloc((size_t)n * sizeof *s0), *s1 = malloc((size_t)n * sizeof *s1), best = 0;
    memcpy(s0, d0, (size_t)n * sizeof *s0);
    memcpy(s1, d1, (size_t)n * sizeof *s1);
    qsort(s0, (size_t)n, sizeof *s0, cmp_double);
    qsort(s1, (size_t)n, sizeof *s1, cmp_double);
    for (int k = 0; k < 2 * n; k++) { /* label-1 share at or below t, and label-0 share above it */
        int below1 = 0, below0 = 0;
        while (below1 < n && s1[below1] <= all[k])
            below1++;
        while (below0 < n && s0[below0] <= all[k])
            below0++;
        double a = (double)(below1 + n - below0) / (2 * n);
        best = fmax(best, fmax(a, 1 - a));
    }
    free(all);
    free(s0);
    free(s1);
    return best;
}

Test(pathfinder_rules, matched_negatives_leave_no_marker_distance_cue, .timeout = 60)
{
    /* the named option: with snakes2's negatives a threshold on the marker
     * distance reads some labels (logged), with matched ones it cannot */
    const char *const cfgs[] = {"difficulty=easy", "", "res=16 difficulty=easy"};
    enum { N = 1000 };
    double *d0 = malloc(N * sizeof *d0), *d1 = malloc(N * sizeof *d1);
    for (int q = 0; q < 3; q++) {
        char matched[96];
        snprintf(matched, sizeof matched, "%s negatives=matched", cfgs[q]);
        marker_distances(cfgs[q], N, d0, d1);
        double cue = best_threshold(d0, d1, N);
        marker_distances(matched, N, d0, d1);
        double none = best_threshold(d0, d1, N);
        cr_log_info("[%s] marker-distance threshold: snakes2 %.3f, matched %.3f", cfgs[q], cue, none);
        cr_assert(none < 0.55, "[%s] matched negatives: the marker distance reads the label, accuracy %.3f", cfgs[q],
                  none);
    }
    free(d0);
    free(d1);
}
