/* LRA Pathfinder / Path-X (docs/tasks.md): the generator's determinism,
 * label balance and geometric invariants (markers on contour ends as the
 * label says, clearances), the renderer against a plain full-canvas twin,
 * quantisation, the pixel-histogram probe that must stay near chance, the
 * PNG decoder on committed fixtures (tests/data/lra/pathfinder/, made by
 * make_fixtures.py) and the official release layout. */
#include "common/attn_error.h"
#include "tasks/pathfinder.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fenv.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FIX ATTN_SOURCE_DIR "/tests/data/lra/pathfinder"

static void parse(const char *params, param_bag *p)
{
    memset(p, 0, sizeof *p);
    cr_assert_eq(param_bag_add_list(p, params), 0, "%s", attn_last_error());
}

/* make with status: 0 or the error code (the message in attn_last_error()). */
static int try_make(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n,
                    const char *dir, task_data *d)
{
    param_bag p;
    parse(params, &p);
    memset(d, 0, sizeof *d);
    return t->make(&p, split, seed, n, dir, d);
}

static void make(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n, task_data *d)
{
    cr_assert_eq(try_make(t, params, split, seed, n, NULL, d), 0, "%s: %s", t->name, attn_last_error());
    cr_assert_eq(d->n, n);
}

static void config(const char *params, pf_config *c)
{
    param_bag p;
    char diff[16];
    parse(params, &p);
    cr_assert_eq(pf_config_parse(&p, "pathfinder", 32, c, diff), 0, "%s", attn_last_error());
}

static int rows_equal(const task_data *a, int64_t i, const task_data *b, int64_t j)
{
    return memcmp(task_tokens(a, i), task_tokens(b, j), (size_t)a->len * sizeof(int32_t)) == 0 &&
           a->labels[i] == b->labels[j];
}

/* ---- generator: determinism, streams, balance, parameters ---- */

Test(pathfinder, generator_is_deterministic_and_example_i_ignores_n, .timeout = 60)
{
    task_data a, b, c;
    make(&task_pathfinder, "", TASK_TRAIN, 7, 12, &a);
    make(&task_pathfinder, "", TASK_TRAIN, 7, 12, &b);
    make(&task_pathfinder, "", TASK_TRAIN, 7, 5, &c);
    cr_assert_eq(a.len, 1 + 32 * 32);
    cr_assert_eq(a.vocab, 257);
    cr_assert_eq(a.n_classes, 2);
    cr_assert_str_eq(a.data_source, "generated");
    for (int64_t i = 0; i < 12; i++) {
        cr_assert(rows_equal(&a, i, &b, i), "example %lld differs between two identical calls", (long long)i);
        cr_assert_eq(task_tokens(&a, i)[0], 256, "CLS first");
        for (int64_t t = 1; t < a.len; t++)
            cr_assert(task_tokens(&a, i)[t] >= 0 && task_tokens(&a, i)[t] <= 255);
    }
    for (int64_t i = 0; i < 5; i++)
        cr_assert(rows_equal(&a, i, &c, i), "example %lld depends on n", (long long)i);
    task_data_free(&b);
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2);
    make(&task_pathfinder, "", TASK_TRAIN, 7, 12, &b);
    omp_set_num_threads(threads);
    for (int64_t i = 0; i < 12; i++)
        cr_assert(rows_equal(&a, i, &b, i), "example %lld depends on the thread count", (long long)i);
    task_data_free(&a);
    task_data_free(&b);
    task_data_free(&c);
}

Test(pathfinder, splits_and_seeds_give_unrelated_streams, .timeout = 60)
{
    task_data d[4];
    make(&task_pathfinder, "", TASK_TRAIN, 3, 8, &d[0]);
    make(&task_pathfinder, "", TASK_VALID, 3, 8, &d[1]);
    make(&task_pathfinder, "", TASK_TEST, 3, 8, &d[2]);
    make(&task_pathfinder, "", TASK_TRAIN, 4, 8, &d[3]);
    for (int x = 0; x < 4; x++)
        for (int y = x + 1; y < 4; y++)
            for (int64_t i = 0; i < 8; i++)
                for (int64_t j = 0; j < 8; j++)
                    cr_assert(memcmp(task_tokens(&d[x], i), task_tokens(&d[y], j), (size_t)d[x].len * 4) != 0,
                              "streams %d and %d share an image (%lld, %lld)", x, y, (long long)i, (long long)j);
    for (int x = 0; x < 4; x++)
        task_data_free(&d[x]);
}

Test(pathfinder, labels_are_exactly_balanced_pair_by_pair, .timeout = 60)
{
    int first_one = 0;
    for (int64_t i = 0; i < 2000; i += 2) {
        int a = pf_label(11, TASK_TRAIN, i), b = pf_label(11, TASK_TRAIN, i + 1);
        cr_assert(a + b == 1 && (a == 0 || a == 1), "pair %lld holds labels %d, %d", (long long)i / 2, a, b);
        first_one += a;
    }
    /* the order inside a pair is seeded, not fixed: about half start with 1 */
    cr_assert(first_one > 400 && first_one < 600, "pairs starting with label 1: %d of 1000", first_one);
    task_data d;
    make(&task_pathfinder, "", TASK_VALID, 11, 31, &d);
    int ones = 0;
    for (int64_t i = 0; i < d.n; i++) {
        ones += d.labels[i];
        cr_assert_eq(d.labels[i], pf_label(11, TASK_VALID, i));
    }
    cr_assert(ones == 15 || ones == 16, "31 examples, %d ones", ones);
    task_data_free(&d);
}

Test(pathfinder, params_are_strict_and_recorded_in_meta, .timeout = 60)
{
    task_data d;
    static const struct {
        const task_def *t;
        const char *params, *needle;
    } bad[] = {
        {&task_pathfinder, "colour=1", "colour"},
        {&task_pathfinder, "difficulty=medium", "param difficulty: expected one of easy, intermediate, hard"},
        {&task_pathfinder, "res=48", "res=16, 32, 64, 128 or 256"},
        {&task_pathx, "res=64", "res=128"},
        {&task_pathfinder, "contrast=1", "contrast"},
        {&task_pathfinder, "paddle_len=15 distractors=100", "no layout"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = try_make(bad[k].t, bad[k].params, TASK_TRAIN, 1, 2, NULL, &d);
        cr_assert(rc < 0, "%s accepted", bad[k].params);
        cr_assert(strstr(attn_last_error(), bad[k].needle), "%s: %s", bad[k].params, attn_last_error());
    }
    make(&task_pathfinder, "", TASK_TRAIN, 1, 2, &d);
    cr_assert(strstr(d.meta, "max_len=1025;res=32;difficulty=hard;contour_len=14"), "%s", d.meta);
    task_data_free(&d);
    make(&task_pathfinder, "res=64 difficulty=easy", TASK_TRAIN, 1, 2, &d);
    cr_assert_eq(d.len, 1 + 64 * 64);
    cr_assert(strstr(d.meta, "res=64;difficulty=easy;contour_len=6"), "%s", d.meta);
    task_data_free(&d);
    make(&task_pathx, "", TASK_TEST, 1, 2, &d);
    cr_assert_eq(d.len, 16385);
    cr_assert(strstr(d.meta, "res=128;difficulty=hard;contour_len=14"), "%s", d.meta);
    cr_assert_str_eq(d.name, "pathx");
    task_data_free(&d);
}

/* ---- geometry and rendering ---- */

Test(pathfinder, segment_distance_matches_dense_sampling, .timeout = 60)
{
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int k = 0; k < 300; k++) {
        pf_seg a = {attn_rng_uniform(&r) * 8, attn_rng_uniform(&r) * 8, attn_rng_uniform(&r) * 8,
                    attn_rng_uniform(&r) * 8};
        pf_seg b = {attn_rng_uniform(&r) * 8, attn_rng_uniform(&r) * 8, attn_rng_uniform(&r) * 8,
                    attn_rng_uniform(&r) * 8};
        double best = INFINITY;
        for (int s = 0; s <= 2000; s++) { /* points of a against b and of b against a */
            double t = s / 2000.0;
            best = fmin(best, pf_point_seg_dist(a.x0 + t * (a.x1 - a.x0), a.y0 + t * (a.y1 - a.y0), &b));
            best = fmin(best, pf_point_seg_dist(b.x0 + t * (b.x1 - b.x0), b.y0 + t * (b.y1 - b.y0), &a));
        }
        double d = pf_seg_seg_dist(&a, &b);
        cr_assert(d <= best + 1e-12 && d >= best - 0.01, "pair %d: closed form %g, sampled %g", k, d, best);
    }
    pf_seg x1 = {0, 0, 2, 2}, x2 = {0, 2, 2, 0};
    cr_assert_eq(pf_seg_seg_dist(&x1, &x2), 0.0);
}

static int snake_of(const pf_scene *s, int32_t paddle)
{
    int k = 0;
    while (paddle >= s->first[k + 1])
        k++;
    return k;
}

/* The plain twin: every supersample against every primitive, no bounding
 * boxes; targets at paddle_contrast * snake_contrast, distractors at
 * snake_contrast, then stretched to the brightest pixel. */
static void render_plain(const pf_config *c, const pf_scene *s, uint8_t *pix)
{
    int W = c->res, S = W * PF_SS;
    double *cv = calloc((size_t)S * S, sizeof *cv), *avg = calloc((size_t)W * W, sizeof *avg), top = 0;
    for (int v = 0; v < S; v++)
        for (int u = 0; u < S; u++) {
            double x = (u + 0.5) / PF_SS, y = (v + 0.5) / PF_SS, best = 0;
            for (int32_t k = 0; k < s->n_paddles; k++) {
                double value = c->snake_contrast * (snake_of(s, k) < 2 ? c->paddle_contrast : 1);
                best = fmax(best, value * pf_coverage(pf_point_seg_dist(x, y, &s->paddle[k]), c->thickness / 2));
            }
            for (int m = 0; m < 2; m++)
                best = fmax(best, pf_coverage(hypot(x - s->marker_x[m], y - s->marker_y[m]), c->marker_r));
            cv[(size_t)v * S + u] = best;
        }
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            double sum = 0;
            for (int d = 0; d < PF_SS * PF_SS; d++)
                sum += cv[(size_t)(y * PF_SS + d / PF_SS) * S + x * PF_SS + d % PF_SS];
            avg[y * W + x] = sum / (PF_SS * PF_SS);
            top = fmax(top, avg[y * W + x]);
        }
    for (int p = 0; p < W * W; p++)
        pix[p] = (uint8_t)rint(fmin(255, avg[p] / top * 255)); /* FE_TONEAREST: ties to even */
    free(cv);
    free(avg);
}

/* Connected components (8-neighbour) of pixels equal to 255 in pix [W][W]. */
static int bright_blobs(const uint8_t *pix, int W)
{
    int *stack = malloc(sizeof(int) * W * W), blobs = 0;
    uint8_t *seen = calloc((size_t)W * W, 1);
    for (int p = 0; p < W * W; p++) {
        if (pix[p] != 255 || seen[p])
            continue;
        blobs++;
        int top = 0;
        stack[top++] = p, seen[p] = 1;
        while (top) {
            int q = stack[--top], qx = q % W, qy = q / W;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int x = qx + dx, y = qy + dy;
                    if (x >= 0 && x < W && y >= 0 && y < W && pix[y * W + x] == 255 && !seen[y * W + x])
                        seen[y * W + x] = 1, stack[top++] = y * W + x;
                }
        }
    }
    free(stack);
    free(seen);
    return blobs;
}

Test(pathfinder, render_matches_the_plain_full_canvas_twin, .timeout = 60)
{
    cr_assert_eq(fegetround(), FE_TONEAREST);
    const char *const cfgs[] = {"", "res=64 difficulty=easy", "res=128", "res=16 difficulty=easy"};
    pf_scene *s = malloc(sizeof *s);
    for (int q = 0; q < 4; q++) {
        pf_config c;
        config(cfgs[q], &c);
        int W = c.res;
        double *canvas = malloc(sizeof(double) * W * W * PF_SS * PF_SS);
        uint8_t *fast = malloc((size_t)W * W), *plain = malloc((size_t)W * W);
        for (int i = 0; i < (W == 128 ? 1 : 4); i++) {
            attn_rng r;
            pf_example_rng(&r, 21, TASK_TEST, i);
            cr_assert_eq(pf_scene_generate(&c, &r, i % 2, s), 0, "%s", attn_last_error());
            pf_render(&c, s, canvas, fast);
            render_plain(&c, s, plain);
            for (int p = 0; p < W * W; p++)
                cr_assert_eq(fast[p], plain[p], "[%s] image %d pixel (%d, %d): %d vs plain %d", cfgs[q], i, p % W,
                             p / W, fast[p], plain[p]);
            int top = 0;
            for (int p = 0; p < W * W; p++)
                top = fast[p] > top ? fast[p] : top;
            cr_assert_eq(top, 255, "[%s] image %d: the image is stretched to its brightest pixel", cfgs[q], i);
            if (c.snake_contrast * fmax(1, c.paddle_contrast) >= 1)
                continue;
            /* paddles dimmer than the markers (64, 128): the markers are the only full-intensity pixels */
            cr_assert_eq(bright_blobs(fast, W), 2, "[%s] image %d", cfgs[q], i);
            for (int m = 0; m < 2; m++)
                cr_assert_eq(fast[(int)s->marker_y[m] * W + (int)s->marker_x[m]], 255);
        }
        free(canvas);
        free(fast);
        free(plain);
    }
    free(s);
}

Test(pathfinder, generated_images_are_lit_and_show_two_markers_where_paddles_are_dimmer, .timeout = 60)
{
    /* at 64 and 128 paddles are dimmer than the markers (snake contrast 0.8,
     * 0.9), so the markers are the only full-intensity blobs; at 16 and 32
     * (snake contrast 2, as LRA's 32) distractor paddles can be the
     * brightest pixels, which the stretch maps to 255 */
    static const struct {
        const char *params;
        int32_t W, min_lit, two_blobs;
    } cfg[] = {{"", 32, 60, 0}, {"res=16 difficulty=easy", 16, 15, 0}, {"res=64 difficulty=easy", 64, 120, 1}};
    for (int q = 0; q < 3; q++) {
        task_data d;
        make(&task_pathfinder, cfg[q].params, TASK_TEST, 2, 200, &d);
        int32_t W = cfg[q].W;
        uint8_t pix[64 * 64];
        for (int64_t i = 0; i < d.n; i++) {
            int lit = 0, top = 0;
            for (int p = 0; p < W * W; p++) {
                pix[p] = (uint8_t)task_tokens(&d, i)[1 + p], lit += pix[p] > 0;
                top = pix[p] > top ? pix[p] : top;
            }
            cr_assert_eq(top, 255, "[%s] image %lld", cfg[q].params, (long long)i);
            if (cfg[q].two_blobs)
                cr_assert_eq(bright_blobs(pix, W), 2, "[%s] image %lld", cfg[q].params, (long long)i);
            cr_assert(lit > cfg[q].min_lit, "[%s] image %lld has only %d lit pixels", cfg[q].params, (long long)i,
                      lit);
        }
        task_data_free(&d);
    }
}

Test(pathfinder, quantise_rounds_half_to_even, .timeout = 60)
{
    static const double x[][2] = {{0.5, 0},     {1.5, 2},     {2.5, 2},       {3.5, 4},   {126.5, 126},
                                  {127.5, 128}, {254.5, 254}, {2.4999999, 2}, {2.5000001, 3}, {7, 7}};
    for (size_t k = 0; k < sizeof x / sizeof x[0]; k++)
        cr_assert_eq(pf_round_half_even(x[k][0]), x[k][1], "%g", x[k][0]);
    cr_assert_eq(pf_quantise(0.5), 128); /* 127.5 */
    cr_assert_eq(pf_quantise(1.0), 255);
    cr_assert_eq(pf_quantise(1.7), 255);
    cr_assert_eq(pf_quantise(0.0), 0);
    cr_assert_eq(pf_quantise(-0.3), 0);
    cr_assert_eq(pf_quantise(NAN), 0);
    /* against rint in the default mode (ties to even), near-ties included */
    cr_assert_eq(fegetround(), FE_TONEAREST);
    attn_rng r;
    attn_rng_seed(&r, 8);
    for (int k = 0; k < 100000; k++) {
        double v = k < 512 ? (k / 2 + 0.5 * (k % 2)) / 255.0 : attn_rng_uniform(&r);
        cr_assert_eq(pf_quantise(v), (uint8_t)rint(fmin(255, v * 255)), "v = %.17g", v);
    }
}

/* ---- the pixel-histogram probe (generated images should match the official pixel statistics) ---- */

#define PROBE_N 400

/* feat [n][256]: each image's intensity histogram, as fractions of its pixels. */
static void histograms(const task_data *d, int32_t W, double *feat)
{
    for (int64_t i = 0; i < d->n; i++) {
        double *h = feat + i * 256;
        memset(h, 0, 256 * sizeof *h);
        for (int64_t p = 0; p < (int64_t)W * W; p++)
            h[task_tokens(d, i)[1 + p]] += 1.0 / (W * W);
    }
}

/* L2-regularised logistic regression on standardised features, full-batch
 * gradient descent, trained on tr [n][256] and scored on te: test accuracy. */
static double probe_accuracy(const double *tr, const int32_t *ytr, const double *te, const int32_t *yte, int64_t n)
{
    double mu[256] = {0}, sd[256] = {0}, w[257] = {0}, g[257];
    for (int j = 0; j < 256; j++) {
        for (int64_t i = 0; i < n; i++)
            mu[j] += tr[i * 256 + j] / n;
        for (int64_t i = 0; i < n; i++)
            sd[j] += (tr[i * 256 + j] - mu[j]) * (tr[i * 256 + j] - mu[j]) / n;
        sd[j] = sqrt(sd[j]) + 1e-9;
    }
    for (int it = 0; it < 300; it++) {
        memset(g, 0, sizeof g);
        for (int64_t i = 0; i < n; i++) {
            double z = w[256];
            for (int j = 0; j < 256; j++)
                z += w[j] * (tr[i * 256 + j] - mu[j]) / sd[j];
            double e = 1 / (1 + exp(-z)) - ytr[i];
            for (int j = 0; j < 256; j++)
                g[j] += e * (tr[i * 256 + j] - mu[j]) / sd[j] / n;
            g[256] += e / n;
        }
        for (int j = 0; j < 257; j++)
            w[j] -= 0.5 * (g[j] + (j < 256 ? 1e-3 * w[j] : 0));
    }
    int right = 0;
    for (int64_t i = 0; i < n; i++) {
        double z = w[256];
        for (int j = 0; j < 256; j++)
            z += w[j] * (te[i * 256 + j] - mu[j]) / sd[j];
        right += (z > 0) == (yte[i] == 1);
    }
    return (double)right / n;
}

/* Probe accuracy on 400 train / 400 test images of `params` (canvas W);
 * `leak` > 0 brightens that many pixels of every label-1 image (a planted
 * cue the probe must find). */
static double histogram_probe(const char *params, int32_t W, int leak)
{
    task_data tr, te;
    make(&task_pathfinder, params, TASK_TRAIN, 77, PROBE_N, &tr);
    make(&task_pathfinder, params, TASK_TEST, 77, PROBE_N, &te);
    for (int64_t i = 0; i < PROBE_N; i++)
        for (int k = 0; k < leak; k++) {
            if (tr.labels[i])
                task_tokens(&tr, i)[1 + k] = 255;
            if (te.labels[i])
                task_tokens(&te, i)[1 + k] = 255;
        }
    double *ftr = malloc(sizeof(double) * PROBE_N * 256), *fte = malloc(sizeof(double) * PROBE_N * 256);
    histograms(&tr, W, ftr);
    histograms(&te, W, fte);
    double acc = probe_accuracy(ftr, tr.labels, fte, te.labels, PROBE_N);
    free(ftr);
    free(fte);
    task_data_free(&tr);
    task_data_free(&te);
    return acc;
}

Test(pathfinder, histogram_probe_stays_near_chance, .timeout = 60)
{
    /* res 16 easy too: the slow end-to-end test trains on it with mean pooling */
    static const struct {
        const char *params;
        int32_t W;
    } cfg[] = {{"", 32}, {"res=16 difficulty=easy", 16}};
    for (int q = 0; q < 2; q++) {
        double acc = histogram_probe(cfg[q].params, cfg[q].W, 0);
        cr_log_info("pathfinder [%s] histogram probe: test accuracy %.3f on %d images", cfg[q].params, acc, PROBE_N);
        cr_assert(acc < 0.60, "[%s] a linear probe on pixel histograms reads the label: accuracy %.3f",
                  cfg[q].params, acc);
    }
}

Test(pathfinder, histogram_probe_detects_a_planted_cue, .timeout = 60)
{
    /* the check above can fail: 6 extra full-intensity pixels on label 1 are found */
    double acc = histogram_probe("", 32, 6);
    cr_assert(acc > 0.9, "the probe missed a planted histogram cue: accuracy %.3f", acc);
}

Test(pathfinder, generation_takes_under_two_milliseconds_per_32px_hard_image, .timeout = 60)
{
    /* snakes2 restarts a layout whenever a target gets stuck: 32 hard takes
     * ~75 tries an image, ~0.85 ms of CPU (the 160,000 training images of
     * LRA's config: ~2 CPU minutes) */
    task_data d;
    clock_t t0 = clock();
    make(&task_pathfinder, "", TASK_TRAIN, 123, 300, &d);
    double us = 1e6 * (double)(clock() - t0) / CLOCKS_PER_SEC / 300;
    task_data_free(&d);
    cr_log_info("pathfinder 32x32 hard: %.0f us CPU per image", us);
    cr_assert(us < 2000, "%.0f us CPU per image", us);
}

/* ---- PNG decoder ---- */

static int decode_file(const char *path, uint8_t **pix, int32_t *w, int32_t *h)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "fixture %s missing", path);
    uint8_t *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    int rc = png_gray_decode(buf, n, path, pix, w, h);
    free(buf);
    return rc;
}

Test(pathfinder, png_decodes_stored_fixed_and_dynamic_blocks_with_all_five_filters, .timeout = 60)
{
    /* rows use filter y mod 5 (none, sub, up, average, Paeth); one file per block type */
    const char *const files[] = {FIX "/png/gray_stored.png", FIX "/png/gray_fixed.png", FIX "/png/gray_dynamic.png"};
    for (int k = 0; k < 3; k++) {
        uint8_t *pix;
        int32_t w, h;
        cr_assert_eq(decode_file(files[k], &pix, &w, &h), 0, "%s", attn_last_error());
        cr_assert(w == 37 && h == 29, "%s: %dx%d", files[k], w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                cr_assert_eq(pix[y * w + x], ((x / 4 + y / 3) % 3) * 90 + x % 3, "%s (%d, %d)", files[k], x, y);
        free(pix);
    }
    uint8_t *pix;
    int32_t w, h;
    cr_assert_eq(decode_file(FIX "/png/checker_dynamic.png", &pix, &w, &h), 0, "%s", attn_last_error());
    cr_assert(w == 64 && h == 64);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            cr_assert_eq(pix[y * 64 + x], ((x / 8 + y / 8) % 2) * 200 + x % 7, "(%d, %d)", x, y);
    free(pix);
    /* skewed intensities: rare ones get Huffman codes longer than the 9-bit fast table */
    cr_assert_eq(decode_file(FIX "/png/skewed_dynamic.png", &pix, &w, &h), 0, "%s", attn_last_error());
    cr_assert(w == 96 && h == 96);
    for (int y = 0; y < 96; y++)
        for (int x = 0; x < 96; x++) {
            uint32_t v = ((uint32_t)x * 2654435761u ^ (uint32_t)y * 40503u) * 2246822519u;
            cr_assert_eq(pix[y * 96 + x], 15 * __builtin_ctz(v | 1u << 16) + ((v >> 20) & 7), "(%d, %d)", x, y);
        }
    free(pix);
}

/* CRC-32 of the PNG chunk type and data (bitwise; the decoder has its own table). */
static uint32_t chunk_crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* An IDAT chunk may be empty (encoders flush them): before the first data
 * the decoder once copied zero bytes into its not yet allocated buffer,
 * which UBSan reports (memcpy to NULL); the image must decode unchanged. */
Test(pathfinder, png_with_an_empty_idat_chunk_decodes_unchanged, .timeout = 60)
{
    FILE *f = fopen(FIX "/png/gray_stored.png", "rb");
    cr_assert(f);
    static uint8_t png[1 << 16], with_empty[(1 << 16) + 12];
    size_t n = fread(png, 1, sizeof png, f);
    fclose(f);
    const size_t after_ihdr = 8 + 12 + 13;
    uint8_t empty[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    uint32_t crc = chunk_crc(empty + 4, 4);
    for (int k = 0; k < 4; k++)
        empty[8 + k] = (uint8_t)(crc >> (24 - 8 * k));
    memcpy(with_empty, png, after_ihdr);
    memcpy(with_empty + after_ihdr, empty, 12);
    memcpy(with_empty + after_ihdr + 12, png + after_ihdr, n - after_ihdr);
    uint8_t *a, *b;
    int32_t wa, ha, wb, hb;
    cr_assert_eq(png_gray_decode(png, n, "plain", &a, &wa, &ha), 0, "%s", attn_last_error());
    cr_assert_eq(png_gray_decode(with_empty, n + 12, "with an empty IDAT", &b, &wb, &hb), 0, "%s", attn_last_error());
    cr_assert(wa == wb && ha == hb && memcmp(a, b, (size_t)wa * ha) == 0);
    free(a), free(b);
}

Test(pathfinder, png_rejects_malformed_files_with_one_line_errors_naming_them, .timeout = 60)
{
    static const struct {
        const char *file, *needle;
        int code;
    } bad[] = {
        {"bad_crc.png", "CRC mismatch in chunk 'IDAT'", ATTN_EINVAL},
        {"truncated_idat.png", "truncated IDAT", ATTN_EINVAL},
        {"truncated_file.png", "truncated", ATTN_EINVAL},
        {"empty.png", "empty file", ATTN_EINVAL},
        {"bad_filter.png", "row filter type 0..4, found 7", ATTN_EINVAL},
        {"depth16.png", "bit depth 16 not supported: expected 8-bit grayscale", ATTN_EUNSUPPORTED},
        {"interlaced.png", "interlace method 1 not supported", ATTN_EUNSUPPORTED},
        {"rgb.png", "colour type 2 (RGB) not supported: expected 8-bit grayscale", ATTN_EUNSUPPORTED},
        {"palette_gnuplot.png", "colour type 3 (palette) not supported: expected 8-bit grayscale", ATTN_EUNSUPPORTED},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, FIX "/png/%s", bad[k].file);
        uint8_t *pix = (uint8_t *)1;
        int32_t w, h;
        int rc = decode_file(path, &pix, &w, &h);
        const char *msg = attn_last_error();
        cr_assert_eq(rc, bad[k].code, "%s: rc %d, %s", bad[k].file, rc, msg);
        cr_assert_null(pix);
        cr_assert(strstr(msg, path) && strstr(msg, bad[k].needle), "%s: '%s'", bad[k].file, msg);
        cr_assert_null(strchr(msg, '\n'), "%s: multi-line message", bad[k].file);
    }
}

Test(pathfinder, inflate_rejects_bad_stored_length_and_checksum, .timeout = 60)
{
    /* zlib header 78 01, final stored block "abc", Adler-32 of "abc" = 0x024d0127 */
    uint8_t z[] = {0x78, 0x01, 0x01, 3, 0, 0xfc, 0xff, 'a', 'b', 'c', 0x02, 0x4d, 0x01, 0x27}, out[3];
    const char *why = NULL;
    cr_assert_eq(png_inflate_zlib(z, sizeof z, out, 3, &why), 0, "%s", why);
    cr_assert_eq(memcmp(out, "abc", 3), 0);
    cr_assert_neq(png_inflate_zlib(z, sizeof z, out, 2, &why), 0);
    cr_assert(strstr(why, "more image data"), "%s", why);
    z[13] ^= 1;
    cr_assert_neq(png_inflate_zlib(z, sizeof z, out, 3, &why), 0);
    cr_assert(strstr(why, "Adler-32"), "%s", why);
    z[13] ^= 1, z[5] = 0;
    cr_assert_neq(png_inflate_zlib(z, sizeof z, out, 3, &why), 0);
    cr_assert(strstr(why, "complement"), "%s", why);
}

/* ---- the official release layout ---- */

/* Loads as much of a split of the fixture tree as is readable (the largest n
 * that works) and checks every image against its metadata; ids [6] count the
 * images seen by slot (id 20, 21, 22, 100, 101, 102 -> 0..5). Returns the
 * skip count of the whole split, from the error of asking one image too many
 * (which reads every file of the split). Pixel 0 of each image is its id
 * 10k + i, pixel 1 its label, the rest (3x + 5y + id) mod 256. */
static int load_split(const char *params, task_split split, uint64_t seed, int *ids)
{
    task_data d;
    int64_t n = 6, files = 0, skipped = 0;
    char msg[1024] = "";
    while (n > 0 && try_make(&task_pathfinder, params, split, seed, n, FIX "/official", &d) != 0) {
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        cr_assert(strstr(msg, "readable images in the"), "%s", msg);
        n--;
    }
    const char *of = strstr(msg, "(of ");
    cr_assert(of && sscanf(of, "(of %lld files, %lld skipped", (long long *)&files, (long long *)&skipped) == 2,
              "%s", msg);
    cr_assert_eq(files - skipped, n, "%s", msg);
    if (n == 0)
        return (int)skipped;
    cr_assert_str_eq(d.data_source, "official");
    cr_assert_eq(d.len, 1025);
    cr_assert_eq(d.vocab, 257);
    const char *sk = strstr(d.meta, ";skipped=");
    cr_assert(strstr(d.meta, "max_len=1025;res=32;difficulty=hard;split_seed=") && sk, "%s", d.meta);
    cr_assert(atoi(sk + 9) <= skipped, "%s", d.meta);
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *t = task_tokens(&d, i);
        int id = t[1], slot = id >= 100 ? 3 + id - 100 : id - 20;
        cr_assert(t[0] == PF_CLS && slot >= 0 && slot < 6 && slot != 2, "image id %d", id);
        cr_assert_eq(d.labels[i], (id / 10 + id % 10) % 2, "image %d: label %d, metadata says otherwise", id,
                     d.labels[i]);
        cr_assert_eq(t[2], d.labels[i]);
        for (int p = 2; p < 1024; p++)
            cr_assert_eq(t[1 + p], (p % 32 * 3 + p / 32 * 5 + id) % 256, "image %d pixel %d", id, p);
        ids[slot]++;
    }
    task_data_free(&d);
    return (int)skipped;
}

Test(pathfinder, official_layout_loads_labels_and_skips_the_empty_image, .timeout = 60)
{
    /* 2 metadata files (2.npy, 10.npy) x 3 images; imgs/2/sample_2.png is empty */
    int seen[6] = {0}, skipped = 0;
    for (int q = 0; q < 3; q++)
        skipped += load_split("", (task_split)q, 1, seen);
    cr_assert_eq(skipped, 1, "the empty image is skipped and counted once");
    for (int k = 0; k < 6; k++)
        cr_assert_eq(seen[k], k == 2 ? 0 : 1, "image slot %d seen %d times", k, seen[k]);
    /* --data may also name the resolution or the difficulty directory itself */
    const char *const roots[] = {FIX "/official/pathfinder32", FIX "/official/pathfinder32/curv_contour_length_14"};
    for (int k = 0; k < 2; k++) {
        task_data d;
        cr_assert_eq(try_make(&task_pathfinder, "", TASK_TRAIN, 1, 1, roots[k], &d), 0, "%s", attn_last_error());
        task_data_free(&d);
    }
    /* the split is fixed by split_seed, not by the sampling seed */
    for (int q = 0; q < 3; q++) {
        int a[6] = {0}, b[6] = {0}, c[6] = {0}, moved = 0;
        load_split("", (task_split)q, 1, a);
        load_split("", (task_split)q, 99, b);
        load_split("split_seed=43", (task_split)q, 1, c);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "split %d depends on the sampling seed", q);
        for (int k = 0; k < 6; k++)
            moved += a[k] != c[k];
        if (q == 0) /* and is a real parameter: another split_seed moves images */
            cr_assert(moved > 0, "split_seed 43 gives the same train split as 42");
    }
}

/* A skipped image is named with its cause on stderr, and so is it in the
 * error when too few images remain (the fixture's empty sample_2.png). */
Test(pathfinder, skipped_images_are_named_with_their_cause, .timeout = 60, .init = cr_redirect_stderr)
{
    int named_in_error = 0;
    for (int q = 0; q < 3; q++) {
        task_data d;
        cr_assert_neq(try_make(&task_pathfinder, "", (task_split)q, 1, 6, FIX "/official", &d), 0);
        const char *msg = attn_last_error();
        if (strstr(msg, "1 skipped as empty or corrupt")) {
            cr_assert(strstr(msg, "imgs/2/sample_2.png: "), "the error names the skipped file: %s", msg);
            named_in_error = 1;
        }
    }
    cr_assert(named_in_error, "no split reported the empty image");
    fflush(stderr);
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, cr_get_redirected_stderr());
    text[n] = '\0';
    cr_assert(strstr(text, "skipped") && strstr(text, "imgs/2/sample_2.png: "), "stderr: %s", text);
}

/* The release archive holds the Pathfinder trees one level down
 * (lra_release/lra_release/pathfinder32/...): --data may name the folder it
 * was unpacked in, as for the other LRA tasks. */
Test(pathfinder, the_release_tree_is_found_under_lra_release, .timeout = 60)
{
    char dir[] = "/tmp/attn_pf_XXXXXX", a[64], b[96], link[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/lra_release", dir);
    snprintf(b, sizeof b, "%s/lra_release", a);
    snprintf(link, sizeof link, "%s/pathfinder32", b);
    cr_assert_eq(mkdir(a, 0755), 0);
    cr_assert_eq(mkdir(b, 0755), 0);
    cr_assert_eq(symlink(FIX "/official/pathfinder32", link), 0);
    task_data d;
    cr_assert_eq(try_make(&task_pathfinder, "", TASK_TRAIN, 1, 1, dir, &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    task_data_free(&d);
    unlink(link), rmdir(b), rmdir(a), rmdir(dir);
}

Test(pathfinder, official_layout_errors_name_the_file, .timeout = 60)
{
    task_data d;
    cr_assert_neq(try_make(&task_pathfinder, "", TASK_TRAIN, 1, 1, FIX "/bad_size", &d), 0);
    cr_assert(strstr(attn_last_error(), "imgs/0/sample_0.png: expected a 32x32 image, found 16x16"), "%s",
              attn_last_error());
    cr_assert_neq(try_make(&task_pathfinder, "", TASK_TRAIN, 1, 1, FIX "/bad_label", &d), 0);
    cr_assert(strstr(attn_last_error(), "metadata/0.npy:1: expected label 0 or 1 in field 3, found '7'"), "%s",
              attn_last_error());
    cr_assert_neq(try_make(&task_pathfinder, "difficulty=easy", TASK_TRAIN, 1, 1, FIX "/official", &d), 0);
    cr_assert(strstr(attn_last_error(), "pathfinder32/curv_baseline"), "%s", attn_last_error());
    cr_assert_neq(try_make(&task_pathfinder, "paddle_len=3", TASK_TRAIN, 1, 1, FIX "/official", &d), 0);
    cr_assert(strstr(attn_last_error(), "generator knob 'paddle_len'"), "%s", attn_last_error());
    cr_assert_neq(try_make(&task_pathx, "", TASK_TRAIN, 1, 1, FIX "/official", &d), 0);
    cr_assert(strstr(attn_last_error(), "pathfinder128/curv_contour_length_14"), "%s", attn_last_error());
    cr_assert_neq(try_make(&task_pathfinder, "res=16", TASK_TRAIN, 1, 1, FIX "/official", &d), 0);
    cr_assert(strstr(attn_last_error(), "res=16 is generated only"), "%s", attn_last_error());
}
