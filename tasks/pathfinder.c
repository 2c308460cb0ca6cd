/* `pathfinder` and `pathx`: LRA's Pathfinder (32x32, "hard") and Path-X
 * (128x128, "hard") (Tay et al. 2021, docs/tasks.md; images of Linsley et
 * al. 2018 / Kim et al. 2020). An example is CLS then the W x W grayscale
 * pixels row-major; label 1 iff the two markers sit on the two ends of one
 * contour. Generated data follows a deterministic C generator (docs/tasks.md;
 * same rules as the original, not pixel-identical); --data DIR reads
 * the official release (tasks/pathfinder_official.c).
 *
 * Where the sources are silent the knobs read as follows [unverified, ours]:
 * the turn per paddle is U(-t, t) with t = (pi/4) / continuity; the gap after
 * a paddle is one paddle width (thickness); margin is the clearance between
 * the strokes of different contours (and of a contour and a foreign marker);
 * seed_dist is the least distance between the two markers. */
#include "pathfinder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PF_PI 3.14159265358979323846
#define PF_PADDLE_RETRIES 20
#define PF_SNAKE_RESTARTS 50
#define PF_IMAGE_ATTEMPTS 500
#define PF_PAIR_TRIES 40

/* ---- configuration ---- */

/* The TFDS builder values per resolution. res 16 is
 * ours, not LRA's: the 32 row shrunk (paddle 1.25, seed distance 5, margin
 * 0.5, half the distractor budget; the marker radius stays 1.5, the least
 * that leaves a full-intensity pixel wherever the centre falls) so that an
 * easy image of 257 tokens trains within minutes (tests/test_lra_e2e.c). The
 * script's
 * "default" paddle length at 64/128 is not in the table: 3 and 5 are our
 * choice, scaled so that a hard contour fits the canvas. Contrast: 32 uses
 * the builder's paddle_contrast 0.75, 64/128 the snake_contrast 0.8/0.9. */
typedef struct {
    int32_t res;
    double paddle_len, thickness, margin_lo, margin_hi, marker_r, seed_dist, continuity, contrast, distr_budget;
} pf_defaults;

static const pf_defaults pf_table[] = {
    {.res = 16, .paddle_len = 1.25, .thickness = 0.5, .margin_lo = 0.5, .margin_hi = 0.5, .marker_r = 1.5,
     .seed_dist = 5, .continuity = 1.0, .contrast = 0.75, .distr_budget = 10},
    {.res = 32, .paddle_len = 2, .thickness = 0.5, .margin_lo = 1, .margin_hi = 1, .marker_r = 1.5,
     .seed_dist = 7, .continuity = 1.0, .contrast = 0.75, .distr_budget = 20},
    {.res = 64, .paddle_len = 3, .thickness = 1, .margin_lo = 1, .margin_hi = 1, .marker_r = 2.5,
     .seed_dist = 12, .continuity = 1.8, .contrast = 0.8, .distr_budget = 22},
    {.res = 128, .paddle_len = 5, .thickness = 1.5, .margin_lo = 2, .margin_hi = 3, .marker_r = 3,
     .seed_dist = 20, .continuity = 1.8, .contrast = 0.9, .distr_budget = 35},
};

static const char *const pf_difficulty[] = {"easy", "intermediate", "hard", NULL};
static const int32_t pf_contour_len[3] = {6, 9, 14};

/* Defaults and upper bounds follow res (pf_table): the rows document them,
 * pf_config_parse applies them. */
#define PF_PARAMS(res_def, res_help)                                                                             \
    {.name = "res", .type = OPT_INT, .def = res_def, .lo = 16, .hi = 128, .help = res_help},                     \
    {.name = "difficulty", .type = OPT_ENUM, .names = pf_difficulty, .def = 2, .help = "contour length 6|9|14"}, \
    {.name = "paddle_len", .type = OPT_DOUBLE, .def_str = "1.25|2|3|5 per res 16|32|64|128", .lo = 0.5,         \
     .hi = 64, .help = "at most res/2"},                                                                         \
    {.name = "thickness", .type = OPT_DOUBLE, .def_str = "0.5|0.5|1|1.5 per res", .lo = 0.25, .hi = 8},          \
    {.name = "gap", .type = OPT_DOUBLE, .def_str = "thickness", .lo = 0, .hi = 32, .help = "at most res/4"},     \
    {.name = "margin", .type = OPT_DOUBLE, .def_str = "0.5|1|1|2..3 per res", .lo = 0, .hi = 32,                \
     .help = "at most res/4"},                                                                                   \
    {.name = "marker_r", .type = OPT_DOUBLE, .def_str = "1.5|1.5|2.5|3 per res", .lo = 0.5, .hi = 16,           \
     .help = "at most res/8"},                                                                                   \
    {.name = "seed_dist", .type = OPT_DOUBLE, .def_str = "5|7|12|20 per res", .lo = 0, .hi = 128,               \
     .help = "at most res"},                                                                                     \
    {.name = "continuity", .type = OPT_DOUBLE, .def_str = "1|1|1.8|1.8 per res", .lo = 0.25, .hi = 100},         \
    {.name = "contrast", .type = OPT_DOUBLE, .def_str = "0.75|0.75|0.8|0.9 per res", .lo = 0.05, .hi = 0.99},    \
    {.name = "distractors", .type = OPT_INT, .def_str = "(10|20|22|35 per res)/(contour_len/3)", .lo = 0,       \
     .hi = PF_MAX_SNAKES - 2},                                                                                   \
    {.name = "pad", .type = OPT_DOUBLE, .def = 1, .lo = 0, .hi = 32, .help = "at most res/4"},                  \
    {.name = "split_seed", .type = OPT_INT, .def = 42, .lo = 0, .hi = (double)INT64_MAX,                        \
     .help = "sampling of the official release (--data only)"},                                                 \
    {0}
static const opt_def pathfinder_params[] = {PF_PARAMS(32, "16, 32, 64 or 128")};
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
                         res == 128 ? "128" : "16, 32, 64 or 128", c->res);
    int level = (int)task_param_int(rows, p, "difficulty", &rc);
    if (rc)
        return rc;
    snprintf(diff, 16, "%s", pf_difficulty[level]);
    c->contour_len = pf_contour_len[level];
    c->distractor_len = c->contour_len / 3;
    c->paddle_len = task_param_double_in(p, "paddle_len", d->paddle_len, 0.5, c->res / 2.0, &rc);
    c->thickness = task_param_double_in(p, "thickness", d->thickness, 0.25, 8, &rc);
    c->gap = task_param_double_in(p, "gap", c->thickness, 0, c->res / 4.0, &rc);
    c->margin_lo = task_param_double_in(p, "margin", d->margin_lo, 0, c->res / 4.0, &rc);
    c->margin_hi = param_bag_get(p, "margin") ? c->margin_lo : d->margin_hi;
    c->marker_r = task_param_double_in(p, "marker_r", d->marker_r, 0.5, c->res / 8.0, &rc);
    c->seed_dist = task_param_double_in(p, "seed_dist", d->seed_dist, 0, c->res, &rc);
    c->continuity = task_param_double_in(p, "continuity", d->continuity, 0.25, 100, &rc);
    /* contrast < 1 keeps paddles darker than the markers (drawn at 1) */
    c->contrast = task_param_double_in(p, "contrast", d->contrast, 0.05, 0.99, &rc);
    c->pad = task_param_double_in(p, "pad", 1, 0, c->res / 4.0, &rc);
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

static double pf_unif(attn_rng *r, double lo, double hi) { return lo + (hi - lo) * attn_rng_uniform(r); }

/* ---- the generator ---- */

/* Is paddle `t` of snake `self` (its k-th) clear of everything drawn so far:
 * other snakes by thickness + margin between centre lines, its own paddles
 * before the previous one likewise (no self-crossing), and the markers
 * placed so far (n_markers) by marker_r + thickness/2 + margin? */
static int pf_clear(const pf_config *c, const pf_scene *s, const pf_seg *t, int32_t self, int n_markers)
{
    double need = c->thickness + s->margin;
    double lo_x = pf_min(t->x0, t->x1) - need, hi_x = pf_max(t->x0, t->x1) + need;
    double lo_y = pf_min(t->y0, t->y1) - need, hi_y = pf_max(t->y0, t->y1) + need;
    int32_t own_end = s->n_paddles - 1; /* the previous paddle of this snake may touch */
    for (int32_t k = 0; k < s->n_paddles; k++) {
        const pf_seg *g = &s->paddle[k];
        if (k >= s->first[self] && k >= own_end)
            continue;
        /* bounding boxes further apart than `need`: clear without the exact distance */
        if (pf_max(g->x0, g->x1) <= lo_x || pf_min(g->x0, g->x1) >= hi_x || pf_max(g->y0, g->y1) <= lo_y ||
            pf_min(g->y0, g->y1) >= hi_y)
            continue;
        if (pf_seg_seg_dist(t, g) < need)
            return 0;
    }
    for (int m = 0; m < n_markers; m++)
        if (pf_point_seg_dist(s->marker_x[m], s->marker_y[m], t) < c->marker_r + c->thickness / 2 + s->margin)
            return 0;
    return 1;
}

static int pf_inside(double x, double y, double lo, double hi) { return x >= lo && x <= hi && y >= lo && y <= hi; }

/* Appends a snake of L paddles kept in [bound, W - bound]^2: random start
 * (or the given start[2]) and heading, each paddle turns by U(-turn, turn),
 * paddle_len of ink then `gap`. PF_PADDLE_RETRIES per paddle, `restarts`
 * per snake; -1 if it never fits. */
static int pf_grow_from(const pf_config *c, attn_rng *r, pf_scene *s, int32_t L, double bound, int n_markers,
                        const double *start, int restarts)
{
    double hi = c->res - bound, turn = (PF_PI / 4) / c->continuity;
    int32_t self = s->n_snakes, base = s->n_paddles;
    if (hi <= bound)
        return -1;
    s->first[self] = base;
    for (int restart = 0; restart < restarts; restart++) {
        double x = start ? start[0] : pf_unif(r, bound, hi), y = start ? start[1] : pf_unif(r, bound, hi);
        double heading = 0; /* the first paddle draws its own */
        int32_t k = 0;
        for (; k < L; k++) {
            int placed = 0;
            for (int t = 0; t < PF_PADDLE_RETRIES && !placed; t++) {
                double h = k == 0 ? pf_unif(r, 0, 2 * PF_PI) : heading + pf_unif(r, -turn, turn);
                pf_seg g = {.x0 = x, .y0 = y, .x1 = x + c->paddle_len * cos(h), .y1 = y + c->paddle_len * sin(h)};
                if (!pf_inside(g.x1, g.y1, bound, hi) || !pf_clear(c, s, &g, self, n_markers))
                    continue;
                s->paddle[s->n_paddles++] = g;
                x = g.x1 + c->gap * cos(h), y = g.y1 + c->gap * sin(h), heading = h;
                placed = 1;
            }
            if (!placed)
                break;
        }
        if (k == L) {
            s->first[++s->n_snakes] = s->n_paddles;
            return 0;
        }
        s->n_paddles = base;
    }
    return -1;
}

static int pf_grow_snake(const pf_config *c, attn_rng *r, pf_scene *s, int32_t L, double bound, int n_markers)
{
    return pf_grow_from(c, r, s, L, bound, n_markers, NULL, PF_SNAKE_RESTARTS);
}

/* Marker m on end `end` (0 = start, 1 = tip) of snake `snake`. */
static void pf_put_marker(pf_scene *s, int m, int32_t snake, int end)
{
    const pf_seg *g = &s->paddle[end ? s->first[snake + 1] - 1 : s->first[snake]];
    s->marker_x[m] = end ? g->x1 : g->x0;
    s->marker_y[m] = end ? g->y1 : g->y0;
    s->marker_snake[m] = snake;
}

/* The markers are far enough apart (seed_dist) and clear of every snake but their own. */
static int pf_markers_ok(const pf_config *c, const pf_scene *s)
{
    if (hypot(s->marker_x[0] - s->marker_x[1], s->marker_y[0] - s->marker_y[1]) < c->seed_dist)
        return 0;
    for (int m = 0; m < 2; m++)
        for (int32_t k = 0; k < s->n_paddles; k++) {
            int own = k >= s->first[s->marker_snake[m]] && k < s->first[s->marker_snake[m] + 1];
            if (!own && pf_point_seg_dist(s->marker_x[m], s->marker_y[m], &s->paddle[k]) <
                            c->marker_r + c->thickness / 2 + s->margin)
                return 0;
        }
    return 1;
}

/* Label 0: marks a random end of the first long contour and grows the second
 * from a point at exactly the first contour's end-to-end distance from that
 * end, in a random direction; its start is the second marker. Why: a label-1
 * pair of markers is one contour's two ends; with independent contours the
 * marker distance alone predicts the label (about 60 % at 32 hard, 84 % at 32
 * easy, 69 % at 128 hard). -1 if nothing fits in PF_PAIR_TRIES. */
static int pf_negative_pair(const pf_config *c, attn_rng *r, pf_scene *s, double bound)
{
    const pf_seg *a0 = &s->paddle[0], *a1 = &s->paddle[s->first[1] - 1];
    double target = hypot(a1->x1 - a0->x0, a1->y1 - a0->y0), hi = c->res - bound;
    for (int t = 0; t < PF_PAIR_TRIES; t++) {
        pf_put_marker(s, 0, 0, (int)(attn_rng_next(r) >> 63));
        double phi = pf_unif(r, 0, 2 * PF_PI);
        double at[2] = {s->marker_x[0] + target * cos(phi), s->marker_y[0] + target * sin(phi)};
        if (!pf_inside(at[0], at[1], bound, hi) || pf_grow_from(c, r, s, c->contour_len, bound, 0, at, 4))
            continue;
        pf_put_marker(s, 1, 1, 0);
        return 0;
    }
    return -1;
}

int pf_scene_generate(const pf_config *c, attn_rng *r, int label, pf_scene *s)
{
    /* long contours keep their ends (the marker centres) a marker radius inside */
    double long_bound = pf_max(c->pad, c->marker_r);
    for (int attempt = 0; attempt < PF_IMAGE_ATTEMPTS; attempt++) {
        s->n_paddles = 0, s->n_snakes = 0, s->first[0] = 0;
        int steps = (int)floor(c->margin_hi - c->margin_lo) + 1;
        s->margin = c->margin_lo + (double)attn_rng_uint_below(r, (uint64_t)steps);
        if (pf_grow_snake(c, r, s, c->contour_len, long_bound, 0))
            continue;
        if (label) { /* both ends of snake 0; snake 1 is the unmarked long contour */
            if (pf_grow_snake(c, r, s, c->contour_len, long_bound, 0))
                continue;
            pf_put_marker(s, 0, 0, 0);
            pf_put_marker(s, 1, 0, 1);
        } else if (pf_negative_pair(c, r, s, long_bound)) { /* one end of each long contour */
            continue;
        }
        if (!pf_markers_ok(c, s))
            continue;
        int32_t d = 0;
        while (d < c->n_distractors && pf_grow_snake(c, r, s, c->distractor_len, c->pad, 2) == 0)
            d++;
        if (d == c->n_distractors)
            return 0;
    }
    return attn_fail(ATTN_EINVAL,
                     "pathfinder generator: expected to place 2 contours of %d paddles and %d distractors in a %dx%d "
                     "image, found no layout after %d attempts (loosen paddle_len, margin or distractors)",
                     c->contour_len, c->n_distractors, c->res, c->res, PF_IMAGE_ATTEMPTS);
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
    snprintf(out->meta, sizeof out->meta, "max_len=%lld;res=%d;difficulty=%s;contour_len=%d;distractors=%d",
             (long long)out->len, W, diff, c->contour_len, c->n_distractors);
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
                         "task %s: expected every example to be generated, found a failure (no layout after %d "
                         "attempts for res=%d contour_len=%d distractors=%d, or out of memory)",
                         task, PF_IMAGE_ATTEMPTS, W, c->contour_len, c->n_distractors);
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
