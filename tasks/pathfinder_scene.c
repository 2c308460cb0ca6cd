/* The Pathfinder scene generator. It follows the rules of snakes2.py, the
 * script LRA's Pathfinder images were made with (Linsley et al. 2018; Kim
 * et al. 2020; the per-resolution arguments in pathfinder.c), in continuous
 * coordinates instead of its pixel grid (docs/tasks.md lists what differs):
 *
 * - the two targets grow together, one paddle each in turn; the first starts
 *   uniformly in the centre square that keeps a border of max(pad,
 *   2 seed_dist), the second exactly seed_dist away in a random direction;
 * - a paddle is paddle_len of ink; between two paddles a gap of 2 margin
 *   turns at its middle (the "pivot"), the turn drawn with density ~
 *   cos^2(continuity * turn); a new paddle keeps clear of every stroke but
 *   the previous paddle of its own contour (pf_tip_need, pf_body_need) and
 *   thickness / 2 + margin clear of the padding border; 3 draws per paddle;
 * - a target that gets stuck restarts the image; a distractor gets 5
 *   attempts and is left out after that;
 * - the markers go on the start of one target and on the tip of the same
 *   target (label 1) or of the other (label 0), so the scene itself does not
 *   depend on the label (negatives=matched: see pf_targets_matched). */
#include "pathfinder.h"

#include <math.h>

#define PF_PI 3.14159265358979323846
#define PF_PADDLE_TRIALS 3       /* snakes2's max_paddle_retrial 2: three draws */
#define PF_SEED_TRIALS 3         /* likewise for the placement of each target's first paddle */
#define PF_DISTRACTOR_ATTEMPTS 5 /* max_distractor_contour_retrial 4 */
/* snakes2 draws a turn from the candidates whose new tip is free; we draw
 * the cos^2 law until a free tip comes up, and give up (a dead end, as the
 * reference when no free candidate is left) after this many draws */
#define PF_TURN_DRAWS 64
#define PF_START_DRAWS 100 /* uniform starts tried for a distractor's first paddle */
/* snakes2 retries the two targets without limit. Its rules make that slow
 * where a contour is long for the canvas: 64 hard (14 paddles of 5 + a gap
 * of 2 in 64 px, turns of at most 50 degrees) needs ~18,000 tries an image
 * (~0.1 s here), 128 hard ~300, 32 hard ~75. The cap only stops settings
 * that cannot succeed. */
#define PF_IMAGE_ATTEMPTS 1000000

/* The contours placed so far: contour k owns paddles start[k] .. start[k] +
 * count[k] - 1 of the scene (the targets sit at 0 and contour_len while they
 * grow, the distractors follow). */
typedef struct {
    pf_scene *s;
    int32_t n, start[PF_MAX_SNAKES], count[PF_MAX_SNAKES];
    double heading[PF_MAX_SNAKES];
} pf_grow;

static double pf_unif(attn_rng *r, double lo, double hi) { return lo + (hi - lo) * attn_rng_uniform(r); }

/* snakes2 draws orientations in whole degrees: U{lo, ..., lo + n - 1} degrees, in radians */
static double pf_whole_degrees(attn_rng *r, int lo, int n)
{
    return (lo + (int)attn_rng_uint_below(r, (uint64_t)n)) * PF_PI / 180;
}

double pf_turn_sample(double continuity, attn_rng *r)
{
    /* u = continuity * turn has density ~ cos^2 u on (-pi/2, pi/2): uniform
     * proposals accepted with probability cos^2 u (half of them) */
    for (;;) {
        double u = pf_unif(r, -PF_PI / 2, PF_PI / 2), cu = cos(u);
        if (fabs(u) <= PF_PI * continuity && attn_rng_uniform(r) < cu * cu)
            return u / continuity;
    }
}

void pf_first_start_zone(const pf_config *c, double *lo, double *hi)
{
    *lo = pf_max(c->pad, 2 * c->seed_dist);
    *hi = c->res - *lo;
}

static int pf_inside(double x, double y, double lo, double hi) { return x >= lo && x <= hi && y >= lo && y <= hi; }

/* The box paddles keep to: thickness / 2 + margin inside the padding. */
static double pf_bound(const pf_config *c, const pf_scene *s) { return c->pad + c->thickness / 2 + s->margin; }

/* Distance from t (a segment, or a point when t is degenerate) to the
 * centre lines of every contour, the newest paddle of contour `self`
 * excepted (a new paddle attaches to it): is it at least `need`? */
static int pf_clear(const pf_grow *g, const pf_seg *t, int32_t self, double need)
{
    const pf_scene *s = g->s;
    double lo_x = pf_min(t->x0, t->x1) - need, hi_x = pf_max(t->x0, t->x1) + need;
    double lo_y = pf_min(t->y0, t->y1) - need, hi_y = pf_max(t->y0, t->y1) + need;
    for (int32_t k = 0; k < g->n; k++) {
        int32_t end = g->start[k] + g->count[k] - (k == self ? 1 : 0);
        for (int32_t p = g->start[k]; p < end; p++) {
            const pf_seg *q = &s->paddle[p];
            /* bounding boxes further apart than `need`: clear without the exact distance */
            if (pf_max(q->x0, q->x1) <= lo_x || pf_min(q->x0, q->x1) >= hi_x || pf_max(q->y0, q->y1) <= lo_y ||
                pf_min(q->y0, q->y1) >= hi_y)
                continue;
            double d = t->x0 == t->x1 && t->y0 == t->y1 ? pf_point_seg_dist(t->x0, t->y0, q) : pf_seg_seg_dist(t, q);
            if (d < need)
                return 0;
        }
    }
    return 1;
}

/* snakes2 keeps a mask of every stroke widened by `margin` and takes a new
 * tip only where that mask, widened by `margin` again, is free: the tip
 * keeps thickness / 2 + 2 margin from other centre lines. The paddle itself
 * is refused where its own widened stroke overlaps the mask at nearly full
 * strength on both; after the anti-aliasing of snakes2's masks that is, to
 * a fraction of a pixel, 2 margin between centre lines. */
static double pf_tip_need(const pf_config *c, const pf_scene *s) { return c->thickness / 2 + 2 * s->margin; }
static double pf_body_need(const pf_scene *s) { return 2 * s->margin; }

static pf_seg pf_paddle_from(double x, double y, double h, double len)
{
    return (pf_seg){.x0 = x, .y0 = y, .x1 = x + len * cos(h), .y1 = y + len * sin(h)};
}

static void pf_put(pf_grow *g, int32_t k, const pf_seg *t, double h)
{
    g->s->paddle[g->start[k] + g->count[k]++] = *t;
    g->heading[k] = h;
}

/* Adds a paddle to contour k: the pivot lies `margin` beyond its tip, the
 * new paddle starts `margin` past the pivot in the turned direction. */
static int pf_extend(const pf_config *c, attn_rng *r, pf_grow *g, int32_t k)
{
    const pf_seg *last = &g->s->paddle[g->start[k] + g->count[k] - 1];
    double m = g->s->margin, h = g->heading[k], b = pf_bound(c, g->s);
    double px = last->x1 + m * cos(h), py = last->y1 + m * sin(h);
    for (int trial = 0; trial < PF_PADDLE_TRIALS; trial++) {
        double nh = h, cn = 0, sn = 0;
        int free_tip = 0;
        for (int d = 0; d < PF_TURN_DRAWS && !free_tip; d++) {
            nh = h + pf_turn_sample(c->continuity, r), cn = cos(nh), sn = sin(nh);
            double tx = px + (c->paddle_len + m) * cn, ty = py + (c->paddle_len + m) * sn;
            pf_seg tip = {.x0 = tx, .y0 = ty, .x1 = tx, .y1 = ty};
            free_tip = pf_inside(tx, ty, b, c->res - b) && pf_clear(g, &tip, k, pf_tip_need(c, g->s));
        }
        if (!free_tip)
            return -1;
        pf_seg t = {.x0 = px + m * cn, .y0 = py + m * sn, .x1 = px + (c->paddle_len + m) * cn,
                    .y1 = py + (c->paddle_len + m) * sn};
        if (pf_inside(t.x0, t.y0, b, c->res - b) && pf_clear(g, &t, k, pf_body_need(g->s))) {
            pf_put(g, k, &t, nh);
            return 0;
        }
    }
    return -1;
}

static int32_t pf_open(pf_grow *g, int32_t start)
{
    g->start[g->n] = start, g->count[g->n] = 0;
    return g->n++;
}

/* The first target's first paddle: a heading in whole degrees, then a start
 * uniform among the points of the zone whose paddle stays in the zone (a
 * rectangle for a given heading). */
static int pf_seed_first(const pf_config *c, attn_rng *r, pf_grow *g)
{
    double lo, hi;
    pf_first_start_zone(c, &lo, &hi);
    int32_t k = pf_open(g, 0);
    for (int trial = 0; trial < PF_SEED_TRIALS; trial++) {
        double h = pf_whole_degrees(r, -180, 360), dx = c->paddle_len * cos(h), dy = c->paddle_len * sin(h);
        double x_lo = lo + pf_max(0, -dx), x_hi = hi - pf_max(0, dx);
        double y_lo = lo + pf_max(0, -dy), y_hi = hi - pf_max(0, dy);
        if (x_lo > x_hi || y_lo > y_hi)
            continue;
        pf_seg t = pf_paddle_from(pf_unif(r, x_lo, x_hi), pf_unif(r, y_lo, y_hi), h, c->paddle_len);
        pf_put(g, k, &t, h);
        return 0;
    }
    return -1;
}

/* A target's first paddle from a start at distance `dist` from (x, y) in a
 * random whole-degree direction. `loose`: snakes2's rule for the second
 * target, which asks only that the paddle and the pivot behind its start
 * lie in the image; otherwise the paddle keeps to the padding box. Both
 * keep clear of the strokes placed so far. */
static int pf_seed_at(const pf_config *c, attn_rng *r, pf_grow *g, int32_t at, double x, double y, double dist,
                      int loose)
{
    double m = g->s->margin, b = loose ? 0 : pf_bound(c, g->s);
    int32_t k = pf_open(g, at);
    for (int trial = 0; trial < PF_SEED_TRIALS; trial++) {
        double phi = pf_whole_degrees(r, 0, 360), h = pf_whole_degrees(r, -180, 360);
        pf_seg t = pf_paddle_from(x + dist * cos(phi), y + dist * sin(phi), h, c->paddle_len);
        double back_x = t.x0 - m * cos(h), back_y = t.y0 - m * sin(h);
        if (!pf_inside(t.x0, t.y0, b, c->res - b) || !pf_inside(t.x1, t.y1, b, c->res - b) ||
            (loose && !pf_inside(back_x, back_y, 0, c->res)) || !pf_clear(g, &t, k, pf_body_need(g->s)))
            continue;
        pf_put(g, k, &t, h);
        return 0;
    }
    return -1;
}

/* snakes2's targets: both seeded, then extended in turn. */
static int pf_targets_snakes2(const pf_config *c, attn_rng *r, pf_grow *g)
{
    if (pf_seed_first(c, r, g))
        return -1;
    const pf_seg *a = &g->s->paddle[0];
    if (pf_seed_at(c, r, g, c->contour_len, a->x0, a->y0, c->seed_dist, 1))
        return -1;
    for (int32_t i = 1; i < c->contour_len; i++)
        for (int32_t k = 0; k < 2; k++)
            if (pf_extend(c, r, g, k))
                return -1;
    return 0;
}

/* The matched variant: the first target grown whole, the second seeded at
 * the first's end-to-end distance from its start, then grown. */
static int pf_targets_matched(const pf_config *c, attn_rng *r, pf_grow *g)
{
    if (pf_seed_first(c, r, g))
        return -1;
    for (int32_t i = 1; i < c->contour_len; i++)
        if (pf_extend(c, r, g, 0))
            return -1;
    const pf_seg *a = &g->s->paddle[0], *z = &g->s->paddle[c->contour_len - 1];
    if (pf_seed_at(c, r, g, c->contour_len, a->x0, a->y0, hypot(z->x1 - a->x0, z->y1 - a->y0), 0))
        return -1;
    for (int32_t i = 1; i < c->contour_len; i++)
        if (pf_extend(c, r, g, 1))
            return -1;
    return 0;
}

/* One distractor: a uniform start whose first paddle fits, then extended. */
static int pf_distractor(const pf_config *c, attn_rng *r, pf_grow *g)
{
    double b = pf_bound(c, g->s);
    int32_t k = pf_open(g, g->s->n_paddles);
    int placed = 0;
    for (int d = 0; d < PF_START_DRAWS && !placed; d++) {
        double h = pf_whole_degrees(r, -180, 360);
        pf_seg t = pf_paddle_from(pf_unif(r, b, c->res - b), pf_unif(r, b, c->res - b), h, c->paddle_len);
        if (pf_inside(t.x1, t.y1, b, c->res - b) && pf_clear(g, &t, k, pf_body_need(g->s))) {
            pf_put(g, k, &t, h);
            placed = 1;
        }
    }
    for (int32_t i = 1; placed && i < c->distractor_len; i++)
        placed = pf_extend(c, r, g, k) == 0;
    if (!placed) {
        g->n--;
        return -1;
    }
    g->s->n_paddles += g->count[k];
    return 0;
}

/* Marker m on the start (end 0) or the tip (end 1) of snake k. */
static void pf_put_marker(pf_scene *s, int m, int32_t k, int end)
{
    const pf_seg *p = &s->paddle[end ? s->first[k + 1] - 1 : s->first[k]];
    s->marker_x[m] = end ? p->x1 : p->x0;
    s->marker_y[m] = end ? p->y1 : p->y0;
    s->marker_snake[m] = k;
}

static void pf_place_markers(const pf_config *c, attn_rng *r, pf_scene *s, int label)
{
    if (c->negatives == PF_NEG_MATCHED) { /* label 0: the second target's start, at the same distance */
        pf_put_marker(s, 0, 0, 0);
        pf_put_marker(s, 1, label ? 0 : 1, !!label);
        return;
    }
    int32_t origin = (int32_t)(attn_rng_next(r) >> 63);
    pf_put_marker(s, 0, origin, 0);
    pf_put_marker(s, 1, label ? origin : 1 - origin, 1);
}

int pf_scene_generate(const pf_config *c, attn_rng *r, int label, pf_scene *s)
{
    pf_grow g = {.s = s};
    for (int attempt = 0; attempt < PF_IMAGE_ATTEMPTS; attempt++) {
        int steps = (int)floor(c->margin_hi - c->margin_lo) + 1;
        s->margin = c->margin_lo + (double)attn_rng_uint_below(r, (uint64_t)steps);
        s->n_paddles = 0, g.n = 0;
        int rc = c->negatives == PF_NEG_MATCHED ? pf_targets_matched(c, r, &g) : pf_targets_snakes2(c, r, &g);
        if (rc)
            continue;
        s->n_paddles = 2 * c->contour_len;
        for (int32_t d = 0; d < c->n_distractors; d++)
            for (int a = 0; a < PF_DISTRACTOR_ATTEMPTS && pf_distractor(c, r, &g) != 0; a++)
                ;
        s->n_snakes = g.n;
        for (int32_t k = 0; k < g.n; k++)
            s->first[k] = g.start[k];
        s->first[g.n] = s->n_paddles;
        pf_place_markers(c, r, s, label);
        return 0;
    }
    return attn_fail(ATTN_EINVAL,
                     "pathfinder generator: expected to place 2 contours of %d paddles in a %dx%d image, found no "
                     "layout after %d attempts (loosen paddle_len, margin or seed_dist)",
                     c->contour_len, c->res, c->res, PF_IMAGE_ATTEMPTS);
}
