/* LRA Pathfinder and Path-X (Tay et al. 2021; Linsley et al. 2018;
 * docs/tasks.md): the tasks, the scene generator (snakes2's rules), its renderer and the
 * 8-bit grayscale PNG decoder used to read the official release. */
#ifndef ATTN_PATHFINDER_H
#define ATTN_PATHFINDER_H

#include "lra.h"
#include "common/rng.h"
#include "task.h"

#include <stddef.h>
#include <stdint.h>

extern const task_def task_pathfinder, task_pathx;

/* Token ids, as the LRA image task: pixel intensities 0..255, then CLS. */
#define PF_CLS LRA_IMAGE_CLS
#define PF_VOCAB LRA_IMAGE_VOCAB

/* ---- PNG (tasks/png_gray.c) ---- */

#define PNG_GRAY_MAX_SIDE 4096

/* Decodes an 8-bit grayscale, non-interlaced PNG held in buf[len]; `name`
 * (the file) starts every error message. On success *pix is malloc'd
 * [h][w] (free()). Errors: ATTN_EUNSUPPORTED for a valid PNG of another
 * kind (colour type, bit depth, interlace), ATTN_EINVAL for an empty,
 * truncated or corrupt file (signature, CRC, deflate stream, Adler-32). */
int png_gray_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pix, int32_t *w, int32_t *h);

/* Inflates a zlib stream in[n] into exactly out[cap] bytes (0), or returns
 * -1 with *why saying what was wrong. */
int png_inflate_zlib(const uint8_t *in, size_t n, uint8_t *out, size_t cap, const char **why);

/* ---- scene, generator and renderer (tasks/pathfinder.c, pathfinder_draw.c) ---- */

#define PF_SS 2            /* supersampling factor ("antialias scale 2" at every resolution) */
#define PF_MAX_PADDLES 2048
#define PF_MAX_SNAKES 160

/* How label-0 examples are made. PF_NEG_SNAKES2 (the default) is the
 * reference's: one scene of two targets whose starts lie seed_dist apart,
 * label 1 marks the start and the tip of one target, label 0 the start of
 * one and the tip of the other, so the marker distance differs a little by
 * label (a partial cue the reference leaves in). PF_NEG_MATCHED (ours, a
 * harder cue-free variant) grows the second target from a point at the
 * first target's end-to-end distance from its start and marks that point
 * for label 0: the marker distance has one law for both labels. */
typedef enum { PF_NEG_SNAKES2, PF_NEG_MATCHED } pf_negatives;

/* Generator knobs, in output pixels (defaults per resolution in pathfinder.c). */
typedef struct {
    int32_t res;            /* W: the image is W x W */
    int32_t contour_len;    /* Lc paddles of each target contour: 6 / 9 / 14 */
    int32_t distractor_len; /* Ld paddles of each distractor (Lc / 3) */
    int32_t n_distractors;  /* attempted; one that finds no room in 5 attempts is left out */
    double paddle_len, thickness;
    double margin_lo, margin_hi; /* per image, uniform in the integers of [lo, hi] */
    double marker_r;
    double seed_dist;  /* exact distance of the two targets' starts (snakes2), and the half-width of the border the first start keeps clear */
    double continuity; /* the turn per paddle has density ~ cos^2(continuity * turn) */
    double snake_contrast, paddle_contrast; /* target paddles at their product, distractors at snake_contrast, markers at 1 */
    double pad;                            /* the border no paddle enters (snakes2's padding) */
    pf_negatives negatives;
} pf_config;

typedef struct {
    double x0, y0, x1, y1; /* a paddle runs from its start (x0, y0) to its tip (x1, y1) */
} pf_seg;

/* One image before rendering: snakes as chains of paddles, two markers.
 * Snakes 0 and 1 are the targets (contour_len paddles each), the rest
 * distractors. A snake's start is (x0, y0) of its first paddle, its tip
 * (x1, y1) of its last; the markers sit on those. */
typedef struct {
    int32_t n_paddles, n_snakes;
    pf_seg paddle[PF_MAX_PADDLES];
    int32_t first[PF_MAX_SNAKES + 1]; /* snake s owns paddles first[s] .. first[s+1]-1 */
    double marker_x[2], marker_y[2];
    int32_t marker_snake[2];
    double margin; /* the margin drawn for this image */
} pf_scene;

/* The official release under data_dir (tasks/pathfinder_official.c). */
int pf_official_make(const char *task, const pf_config *c, const char *diff, const param_bag *params,
                     task_split split, uint64_t seed, int64_t n, const char *data_dir, task_data *out);

/* Parses the task parameters into a config (res default `res`); difficulty
 * is written to diff[16]. */
int pf_config_parse(const param_bag *p, const char *task, int32_t res, pf_config *c, char *diff);

/* Grows one scene with the given label (the rules are snakes2's, described
 * in docs/tasks.md). The paddles do not depend on the label: the same stream
 * gives the same contours for 0 and 1, only the markers move. */
int pf_scene_generate(const pf_config *c, attn_rng *r, int label, pf_scene *s);

/* One turn between consecutive paddles, in radians: density proportional to
 * cos^2(continuity * turn) where continuity * |turn| < pi/2 (and |turn| <= pi),
 * zero elsewhere -- snakes2's weighting of the candidate directions. */
double pf_turn_sample(double continuity, attn_rng *r);

/* The square [lo, hi]^2 the first target's start is drawn from: snakes2 masks
 * a border of max(padding, 2 seed_dist). */
void pf_first_start_zone(const pf_config *c, double *lo, double *hi);

/* The per-example stream of example i of a split, and the label of example
 * i (each pair 2k, 2k+1 holds one 0 and one 1 in seeded order). */
void pf_example_rng(attn_rng *r, uint64_t seed, task_split split, int64_t i);
int pf_label(uint64_t seed, task_split split, int64_t i);

/* Distances used by the clearance rules (output pixels). */
double pf_point_seg_dist(double px, double py, const pf_seg *s);
double pf_seg_seg_dist(const pf_seg *a, const pf_seg *b);

/* Renders the scene into canvas [W*PF_SS][W*PF_SS] (zeroed here): paddles as
 * anti-aliased segments of width thickness (targets at paddle_contrast *
 * snake_contrast, distractors at snake_contrast), markers as filled discs of
 * intensity 1, overlaps by max. Then box-downsamples, divides by the
 * brightest pixel (snakes2 saved float images through scipy's imsave, which
 * stretches them to 0..255) and quantises into pix [W][W]. */
void pf_render(const pf_config *c, const pf_scene *s, double *canvas, uint8_t *pix);

/* Coverage of a supersample at distance d (output px) from a shape edge at
 * radius `half`: a one-supersample-wide linear ramp. */
double pf_coverage(double d, double half);

/* fmin/fmax without the NaN rules, which keep libm calls in the hot loops */
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }

/* Nearest integer, ties to the even one (independent of the FPU rounding mode). */
double pf_round_half_even(double x);

/* v in [0, 1] -> round-half-to-even(255 v), clamped to 0..255. */
uint8_t pf_quantise(double v);

#endif
