/* `pathfinder` and `pathx`: LRA's Pathfinder (32x32, "hard") and Path-X
 * (128x128, "hard") (Tay et al. 2021, docs/tasks.md; images of Linsley et
 * al. 2018 / Kim et al. 2020). An example is CLS then the W x W grayscale
 * pixels row-major; label 1 iff the two markers sit on the two ends of one
 * contour. Generated data follows snakes2's rules (tasks/pathfinder_scene.c;
 * same rules, not pixel-identical); --data DIR reads the official release
 * (tasks/pathfinder_official.c). This file holds the per-resolution
 * arguments, the parameters and the tasks. */
#include "pathfinder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---- */

/* The arguments LRA's TFDS builder lists per resolution, over snakes2's
 * defaults (paddle length 5, padding 22, seed distance 27, paddle contrast 1)
 * where it lists none. res 16 is ours, not LRA's: the 32 row shrunk (paddle
 * 1.25, margin 0.5, seed distance 3 so that the first start's square
 * [2 seed_dist, W - 2 seed_dist] stays 4 pixels wide as at 32, half the
 * distractor budget; the marker radius stays 1.5, the least that leaves a
 * full-intensity pixel wherever the centre falls) so that an easy image of
 * 257 tokens trains within minutes. The square leaves the two starts only 3
 * px apart, beside the marker: tests/test_lra_e2e.c trains with
 * negatives=matched and dimmer paddles, which a small model learns. */
typedef struct {
    int32_t res;
    double paddle_len, thickness, margin_lo, margin_hi, marker_r, seed_dist, continuity;
    double snake_contrast, paddle_contrast, distr_budget, pad;
} pf_defaults;

static const pf_defaults pf_table[] = {
    {.res = 16, .paddle_len = 1.25, .thickness = 0.5, .margin_lo = 0.5, .margin_hi = 0.5, .marker_r = 1.5,
     .seed_dist = 3, .continuity = 1.0, .snake_contrast = 2, .paddle_contrast = 0.75, .distr_budget = 10, .pad = 1},
    {.res = 32, .paddle_len = 2, .thickness = 0.5, .margin_lo = 1, .margin_hi = 1, .marker_r = 1.5,
     .seed_dist = 7, .continuity = 1.0, .snake_contrast = 2, .paddle_contrast = 0.75, .distr_budget = 20, .pad = 1},
    {.res = 64, .paddle_len = 5, .thickness = 1, .margin_lo = 1, .margin_hi = 1, .marker_r = 2.5,
     .seed_dist = 12, .continuity = 1.8, .snake_contrast = 0.8, .paddle_contrast = 1, .distr_budget = 22, .pad = 1},
    {.res = 128, .paddle_len = 5, .thickness = 1.5, .margin_lo = 2, .margin_hi = 3, .marker_r = 3,
     .seed_dist = 20, .continuity = 1.8, .snake_contrast = 0.9, .paddle_contrast = 1, .distr_budget = 35, .pad = 1},
    {.res = 256, .paddle_len = 5, .thickness = 2, .margin_lo = 3, .margin_hi = 3, .marker_r = 5,
     .seed_dist = 27, .continuity = 1.8, .snake_contrast = 1, .paddle_contrast = 1, .distr_budget = 30, .pad = 22},
};

static const char *const pf_difficulty[] = {"easy", "intermediate", "hard", NULL};
static const int32_t pf_contour_len[3] = {6, 9, 14};

/* pf_negatives by name */
static const char *const pf_negative_names[] = {"snakes2", "matched", NULL};

/* Defaults and upper bounds follow res (pf_table): the rows document them,
 * pf_config_parse applies them. */
#define PF_PARAMS(res_def, res_help)                                                                             \
    {.name = "res", .type = OPT_INT, .def = res_def, .lo = 16, .hi = 256, .help = res_help},                     \
    {.name = "difficulty", .type = OPT_ENUM, .names = pf_difficulty, .def = 2, .help = "contour length 6|9|14"}, \
    {.name = "negatives", .type = OPT_ENUM, .names = pf_negative_names, .def = 0,                               \
     .help = "label 0 as snakes2 (the tip of the other target: a partial marker-distance cue) or matched (the "  \
             "marker distance has one law for both labels; ours, harder)"},                                      \
    {.name = "paddle_len", .type = OPT_DOUBLE, .def_str = "1.25|2|5|5|5 per res 16|32|64|128|256", .lo = 0.5,   \
     .hi = 64, .help = "at most res/2"},                                                                         \
    {.name = "thickness", .type = OPT_DOUBLE, .def_str = "0.5|0.5|1|1.5|2 per res", .lo = 0.25, .hi = 8},        \
    {.name = "margin", .type = OPT_DOUBLE, .def_str = "0.5|1|1|2..3|3 per res", .lo = 0, .hi = 32,              \
     .help = "half the gap between paddles and half the clearance between strokes; at most res/4"},           \
    {.name = "marker_r", .type = OPT_DOUBLE, .def_str = "1.5|1.5|2.5|3|5 per res", .lo = 0.5, .hi = 16,         \
     .help = "at most res/8"},                                                                                   \
    {.name = "seed_dist", .type = OPT_DOUBLE, .def_str = "3|7|12|20|27 per res", .lo = 0, .hi = 128,            \
     .help = "distance of the two targets' starts; the first start keeps 2 seed_dist from the edges; below "    \
             "res/4"},                                                                                           \
    {.name = "continuity", .type = OPT_DOUBLE, .def_str = "1|1|1.8|1.8|1.8 per res", .lo = 0.25, .hi = 100},     \
    {.name = "snake_contrast", .type = OPT_DOUBLE, .def_str = "2|2|0.8|0.9|1 per res", .lo = 0.05, .hi = 4,      \
     .help = "paddle intensity (markers are 1; the image is then stretched to its brightest pixel)"},           \
    {.name = "paddle_contrast", .type = OPT_DOUBLE, .def_str = "0.75|0.75|1|1|1 per res", .lo = 0.05, .hi = 4,   \
     .help = "extra factor on the targets' paddles"},                                                           \
    {.name = "distractors", .type = OPT_INT, .def_str = "(10|20|22|35|30 per res)/(contour_len/3)", .lo = 0,    \
     .hi = PF_MAX_SNAKES - 2},                                                                                   \
    {.name = "pad", .type = OPT_DOUBLE, .def_str = "1|1|1|1|22 per res", .lo = 0, .hi = 64,                     \
     .help = "at most res/4"},                                                                                   \
    {.name = "split_seed", .type = OPT_INT, .def = 42, .lo = 0, .hi = (double)INT64_MAX,                        \
     .help = "sampling of the official release (--data only)"},                                                 \
    {0}
static const opt_def pathfinder_params[] = {PF_PARAMS(32, "16, 32, 64, 128 or 256")};
static const opt_def pathx_params[] = {PF_PARAMS(128, "128")};

int pf_config_parse(const param_bag *p, const char *task, int32_t res, pf_config *c, char *diff)
{
    const opt_def *rows = res == 128 ? pathx_params : pathfinder_params;
    int rc = task_params_check(rows, p, task);
    if (rc)
        return rc;
    memset(c, 0, sizeof *c);
    c->res = (int32_t)task_param_int(rows, p, "res", &rc);
    if (rc)
        return rc;
    const pf_defaults *d = NULL;
    for (size_t k = 0; k < sizeof pf_table / sizeof pf_table[0]; k++)
        if (pf_table[k].res == c->res)
            d = &pf_table[k];
    if (!d || (res == 128 && c->res != 128))
        return attn_fail(ATTN_EINVAL, "task %s: expected res=%s, found res=%d", task,
                         res == 128 ? "128" : "16, 32, 64, 128 or 256", c->res);
    int level = (int)task_param_int(rows, p, "difficulty", &rc);
    if (rc)
        return rc;
    snprintf(diff, 16, "%s", pf_difficulty[level]);
    c->contour_len = pf_contour_len[level];
    c->distractor_len = c->contour_len / 3;
    c->negatives = (pf_negatives)task_param_int(rows, p, "negatives", &rc);
    c->paddle_len = task_param_double_in(p, "paddle_len", d->paddle_len, 0.5, c->res / 2.0, &rc);
    c->thickness = task_param_double_in(p, "thickness", d->thickness, 0.25, 8, &rc);
    c->margin_lo = task_param_double_in(p, "margin", d->margin_lo, 0, c->res / 4.0, &rc);
    c->margin_hi = param_bag_get(p, "margin") ? c->margin_lo : d->margin_hi;
    c->marker_r = task_param_double_in(p, "marker_r", d->marker_r, 0.5, c->res / 8.0, &rc);
    /* the first start's square [2 seed_dist, W - 2 seed_dist] must not be empty */
    c->seed_dist = task_param_double_in(p, "seed_dist", d->seed_dist, 0, c->res / 4.0 - 0.5, &rc);
    c->continuity = task_param_double_in(p, "continuity", d->continuity, 0.25, 100, &rc);
    c->snake_contrast = task_param_double_in(p, "snake_contrast", d->snake_contrast, 0.05, 4, &rc);
    c->paddle_contrast = task_param_double_in(p, "paddle_contrast", d->paddle_contrast, 0.05, 4, &rc);
    c->pad = task_param_double_in(p, "pad", d->pad, 0, c->res / 4.0, &rc);
    c->n_distractors = (int32_t)task_param_int_in(p, "distractors", (int64_t)(d->distr_budget / c->distractor_len),
                                                  0, PF_MAX_SNAKES - 2, &rc);
    if (rc)
        return rc;
    if (2 * c->contour_len + c->n_distractors * c->distractor_len > PF_MAX_PADDLES)
        return attn_fail(ATTN_EINVAL, "task %s: expected at most %d paddles per image, found %d", task,
                         PF_MAX_PADDLES, 2 * c->contour_len + c->n_distractors * c->distractor_len);
    return 0;
}

/* ---- randomness ---- */

/* Stream tags: LRA tasks use 100+ (image), 200+ (ListOps); Pathfinder 300+. */
void pf_example_rng(attn_rng *r, uint64_t seed, task_split split, int64_t i)
{
    attn_rng_seed_item(r, seed, 300 + (uint64_t)split, (uint64_t)i);
}

int pf_label(uint64_t seed, task_split split, int64_t i)
{
    attn_rng r;
    attn_rng_seed_item(&r, seed, 310 + (uint64_t)split, (uint64_t)(i / 2));
    int first = (int)(attn_rng_next(&r) >> 63);
    return i % 2 ? 1 - first : first;
}

/* ---- the tasks ---- */

/* out: tokens [n][1 + W*W] (CLS first, then pixels 0..255), labels [n]. */
static int pf_generate(const char *task, const pf_config *c, const char *diff, task_split split, uint64_t seed,
                       int64_t n, task_data *out)
{
    int32_t W = c->res;
    int rc = task_data_alloc(out, task, TASK_CLASSIFY, n, 1 + (int64_t)W * W);
    if (rc)
        return rc;
    out->vocab = PF_VOCAB, out->n_classes = 2;
    snprintf(out->meta, sizeof out->meta,
             "max_len=%lld;res=%d;difficulty=%s;contour_len=%d;distractors=%d;negatives=%s", (long long)out->len, W,
             diff, c->contour_len, c->n_distractors, pf_negative_names[c->negatives]);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        pf_scene *s = malloc(sizeof *s);
        double *canvas = malloc((size_t)W * W * PF_SS * PF_SS * sizeof *canvas);
        uint8_t *pix = malloc((size_t)W * W);
        failed |= !s || !canvas || !pix;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < n; i++) {
            if (failed)
                continue;
            attn_rng r;
            pf_example_rng(&r, seed, split, i);
            int label = pf_label(seed, split, i);
            if (pf_scene_generate(c, &r, label, s)) {
                failed = 1;
                continue;
            }
            pf_render(c, s, canvas, pix);
            int32_t *tok = task_tokens(out, i);
            tok[0] = PF_CLS;
            for (int64_t p = 0; p < (int64_t)W * W; p++)
                tok[1 + p] = pix[p];
            out->labels[i] = label;
        }
        free(s);
        free(canvas);
        free(pix);
    }
    if (failed) {
        task_data_free(out);
        /* the generator's message, when it was the cause, is on a worker's thread */
        return attn_fail(ATTN_EINVAL,
                         "task %s: expected every example to be generated, found a failure (no layout for the "
                         "two targets at res=%d contour_len=%d, or out of memory)",
                         task, W, c->contour_len);
    }
    return 0;
}

static int pf_make(const char *task, int32_t res, const param_bag *params, task_split split, uint64_t seed,
                   int64_t n, const char *data_dir, task_data *out)
{
    memset(out, 0, sizeof *out);
    pf_config c;
    char diff[16];
    int rc = pf_config_parse(params, task, res, &c, diff);
    if (rc)
        return rc;
    if (!data_dir)
        return pf_generate(task, &c, diff, split, seed, n, out);
    if (c.res == 16)
        return attn_fail(ATTN_EINVAL,
                         "task %s: res=16 is generated only (ours); the official release has res 32, 64 and 128",
                         task);
    /* the release was drawn with its own knobs: ours would silently do nothing */
    for (int i = 0; i < params->n; i++)
        if (strcmp(params->key[i], "res") != 0 && strcmp(params->key[i], "difficulty") != 0 &&
            strcmp(params->key[i], "split_seed") != 0)
            return attn_fail(ATTN_EINVAL,
                             "task %s: with --data expected only res, difficulty and split_seed, found generator "
                             "knob '%s'",
                             task, params->key[i]);
    return pf_official_make(task, &c, diff, params, split, seed, n, data_dir, out);
}

static int pathfinder_make(const param_bag *params, task_split split, uint64_t seed, int64_t n,
                           const char *data_dir, task_data *out)
{
    return pf_make("pathfinder", 32, params, split, seed, n, data_dir, out);
}

static int pathx_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                      task_data *out)
{
    return pf_make("pathx", 128, params, split, seed, n, data_dir, out);
}

const task_def task_pathfinder = {
    .name = "pathfinder",
    .suite = "lra",
    .description = "LRA Pathfinder: are the two markers on one dashed contour? CLS + WxW pixels (vocab 257), "
                   "LRA pools by MEAN",
    .params = pathfinder_params,
    .make = pathfinder_make,
};

const task_def task_pathx = {
    .name = "pathx",
    .suite = "lra",
    .description = "LRA Path-X: Pathfinder at 128x128 'hard' (16384 + 1 tokens, vocab 257), LRA pools by MEAN",
    .params = pathx_params,
    .make = pathx_make,
};
