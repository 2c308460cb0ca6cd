/* Internals of the NIAH generator, shared by niah.c (layout, tails,
 * parameters), niah_needles.c (keys, values, needles, RULER's haystack of
 * needles) and niah_place.c (where the needles go); niah_agg.c (RULER's
 * aggregation tasks) shares the tail and the row. */
#ifndef ATTN_NIAH_GEN_H
#define ATTN_NIAH_GEN_H

#include "niah.h"

#include <stdint.h>

enum { NK_PASSKEY, NK_SINGLE, NK_MULTIKEY, NK_MULTIVALUE, NK_MULTIQUERY, NK_VT };

/* The RULER task a configuration reproduces (scripts/synthetic.yaml). */
typedef enum { NV_PASSKEY, NV_S1, NV_S2, NV_S3, NV_MK1, NV_MK2, NV_MK3, NV_MV, NV_MQ, NV_VT } niah_variant;

#define NIAH_MAX_NEEDLES 5
#define NIAH_STR 40 /* a key or value and its NUL: up to a 36-byte uuid */
#define NIAH_NEEDLE_CAP 160

typedef struct {
    int kind;
    niah_variant variant;
    int key_uuid, val_uuid; /* RULER's uuids: MK-3's keys, S-3's and MK-3's values */
    int grid;               /* RULER's essay rule: needles at depths of a 40-point grid */
    int64_t len, len_min, distractors;
    double depth;
    int snap;
    niah_hay_kind hay; /* resolved: never NIAH_HAY_RULER */
    niah_fit_kind fit;
} niah_cfg;

/* One example's strings and layout. */
typedef struct {
    int n_keys, n_vals, n_needles;
    char key[NIAH_MAX_NEEDLES][NIAH_STR]; /* niah keys, or vt names (fixed length) */
    char val[NIAH_MAX_NEEDLES][NIAH_STR]; /* values, or the vt value / passkey */
    int perm[NIAH_MAX_NEEDLES];           /* multiquery: query order */
    char needle[NIAH_MAX_NEEDLES][NIAH_NEEDLE_CAP];
    int64_t off[NIAH_MAX_NEEDLES]; /* haystack bytes before each needle */
    int order[NIAH_MAX_NEEDLES];   /* needles in context order */
    int64_t hay_bytes;             /* filler bytes around the needles: what makes it a haystack */
} niah_ex;

/* RULER's haystack of needles: starts of its needles, their count and the
 * bytes they fill. */
typedef struct {
    int64_t *start, cap, n, used;
} niah_needle_hay;

/* The length rows of every NIAH task's parameter table. */
#define NIAH_LEN_PARAMS                                                                                        \
    {.name = "len", .type = OPT_INT, .def = 512, .lo = 16, .hi = 1 << 26, .help = "sequence length"},          \
    {.name = "len_min", .type = OPT_INT, .def = 0, .def_str = "len", .lo = 0, .hi = 1 << 26,                  \
     .help = "shortest length: lengths uniform in [len_min, len]"}

/* len_min (0: len) <= len, else an error naming len_min. */
int niah_check_lengths(int64_t len, int64_t len_min);

/* An example's length: len, or uniform in [len_min, len] when len_min > 0. */
int64_t niah_draw_len(attn_rng *r, int64_t len, int64_t len_min);

/* --- the tail and the row (niah.c; shared with niah_agg.c) ---------------- */

#define NIAH_TAIL_CAP 256

/* The tokens after the context, and which of them are trained answer bytes. */
typedef struct {
    int32_t tok[NIAH_TAIL_CAP];
    uint8_t scored[NIAH_TAIL_CAP];
    int n;
} niah_tail;

void niah_tail_put(niah_tail *t, int32_t tok, int scored);
void niah_tail_str(niah_tail *t, const char *s, int scored);

/* Appends the tail at y[at]; the example must then be exactly y[0..T]. */
int niah_put_tail(int32_t *y, int64_t at, const niah_tail *t, int64_t T);

/* Row i of out from the example y [T+1] and its tail: tokens (PAD after T)
 * and the answer bytes of the tail as targets. */
void niah_put_row(task_data *out, int64_t i, const int32_t *y, int64_t T, const niah_tail *t);

/* --- niah_needles.c ------------------------------------------------------ */

/* Keys (and counts, query order): drawn once per example. */
void niah_draw_keys(const niah_cfg *c, attn_rng *r, niah_ex *e);

/* Fixed-length answers (values, vt names), distinct, redrawn while any
 * occurs in the haystack hay [G]; over a haystack of needles the keys are
 * redrawn (same length) while one occurs in it. */
int niah_draw_answers(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G);

/* Placeholder answers of the final lengths, to size needles and tail. */
void niah_placeholder_answers(const niah_cfg *c, niah_ex *e);

/* Needle j's text into out [NIAH_NEEDLE_CAP]; returns its length. */
int niah_render_needle(const niah_cfg *c, const niah_ex *e, int j, char *out);

/* RULER's `needle` haystack in up to n bytes: whole needles of the variant's
 * key and value formats with fresh random keys and values, one after the
 * other until the next would not fit. */
int niah_needle_hay_fill(const niah_cfg *c, attn_rng *r, uint8_t *out, int64_t n, niah_needle_hay *nh);

/* --- niah_place.c -------------------------------------------------------- */

/* The largest p <= o with p == 0 or a sentence end just before p: '.', '!'
 * or '?' followed by white space or by the end of the filled bytes (limit). */
int64_t niah_snap_back(const uint8_t *hay, int64_t limit, int64_t o);

/* RULER's essay depths, in percent: round(linspace(0, 100, 40))[i]. */
int niah_grid_depth(int i);
enum { NIAH_GRID = 40 };

/* Offsets of the needles in the haystack [G] and their context order, by
 * the variant's rule (niah_place.c); d is the depth parameter (-1: the
 * rule's own random draw). nh: the haystack of needles, or NULL. */
int niah_place_needles(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G, double d,
                       const niah_needle_hay *nh);

#endif
