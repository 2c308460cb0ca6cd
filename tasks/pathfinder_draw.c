/* Rendering of a Pathfinder scene (Linsley et al. 2018): anti-aliased paddles and
 * filled marker discs drawn at PF_SS x supersampling (the original's
 * "antialias scale 2"), box-downsampled, quantised to uint8 with round half
 * to even. Coordinates are output pixels: pixel (x, y) covers [x, x+1) x
 * [y, y+1); supersample (u, v) sits at ((u + 0.5) / PF_SS, (v + 0.5) / PF_SS). */
#include "pathfinder.h"

#include <math.h>
#include <string.h>

double pf_point_seg_dist(double px, double py, const pf_seg *s)
{
    double dx = s->x1 - s->x0, dy = s->y1 - s->y0, l2 = dx * dx + dy * dy;
    double t = l2 > 0 ? ((px - s->x0) * dx + (py - s->y0) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = s->x0 + t * dx - px, ey = s->y0 + t * dy - py;
    return sqrt(ex * ex + ey * ey);
}

static double pf_cross(double ax, double ay, double bx, double by, double cx, double cy)
{
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

double pf_seg_seg_dist(const pf_seg *a, const pf_seg *b)
{
    /* proper crossing: the endpoints of each lie strictly on both sides of the other */
    double d1 = pf_cross(a->x0, a->y0, a->x1, a->y1, b->x0, b->y0);
    double d2 = pf_cross(a->x0, a->y0, a->x1, a->y1, b->x1, b->y1);
    double d3 = pf_cross(b->x0, b->y0, b->x1, b->y1, a->x0, a->y0);
    double d4 = pf_cross(b->x0, b->y0, b->x1, b->y1, a->x1, a->y1);
    if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)))
        return 0;
    double m = pf_point_seg_dist(a->x0, a->y0, b);
    m = pf_min(m, pf_point_seg_dist(a->x1, a->y1, b));
    m = pf_min(m, pf_point_seg_dist(b->x0, b->y0, a));
    return pf_min(m, pf_point_seg_dist(b->x1, b->y1, a));
}

double pf_coverage(double d, double half)
{
    double c = (half - d) * PF_SS + 0.5;
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

double pf_round_half_even(double x)
{
    double f = floor(x), r = x - f;
    if (r > 0.5 || (r == 0.5 && fmod(f, 2.0) != 0))
        f += 1;
    return f;
}

uint8_t pf_quantise(double v)
{
    double x = v * 255.0;
    if (!(x > 0))
        return 0; /* also NaN */
    return x >= 255 ? 255 : (uint8_t)pf_round_half_even(x);
}

/* The supersamples whose centres lie within `reach` of the box [x0,x1]x[y0,y1]:
 * u in [*u0, *u1), v in [*v0, *v1), clipped to the S x S canvas. */
static void pf_bbox(double x0, double y0, double x1, double y1, double reach, int S, int *u0, int *u1, int *v0,
                    int *v1)
{
    double lo_x = pf_min(x0, x1) - reach, hi_x = pf_max(x0, x1) + reach;
    double lo_y = pf_min(y0, y1) - reach, hi_y = pf_max(y0, y1) + reach;
    *u0 = (int)pf_max(0, floor(lo_x * PF_SS - 0.5));
    *u1 = (int)pf_min(S, ceil(hi_x * PF_SS + 0.5));
    *v0 = (int)pf_max(0, floor(lo_y * PF_SS - 0.5));
    *v1 = (int)pf_min(S, ceil(hi_y * PF_SS + 0.5));
}

/* canvas [S][S], S = W * PF_SS: max-composites value * coverage of a segment
 * of width `width` (round caps, as a stroked polyline). */
static void pf_draw_segment(double *canvas, int S, const pf_seg *s, double width, double value)
{
    int u0, u1, v0, v1;
    double half = width / 2, reach = half + 1.0 / PF_SS;
    pf_bbox(s->x0, s->y0, s->x1, s->y1, reach, S, &u0, &u1, &v0, &v1);
    for (int v = v0; v < v1; v++)
        for (int u = u0; u < u1; u++) {
            double c = value * pf_coverage(pf_point_seg_dist((u + 0.5) / PF_SS, (v + 0.5) / PF_SS, s), half);
            double *px = canvas + (size_t)v * (size_t)S + (size_t)u;
            *px = c > *px ? c : *px;
        }
}

/* canvas [S][S]: a filled disc of radius r and intensity value. */
static void pf_draw_disc(double *canvas, int S, double cx, double cy, double r, double value)
{
    int u0, u1, v0, v1;
    pf_bbox(cx, cy, cx, cy, r + 1.0 / PF_SS, S, &u0, &u1, &v0, &v1);
    for (int v = v0; v < v1; v++)
        for (int u = u0; u < u1; u++) {
            double dx = (u + 0.5) / PF_SS - cx, dy = (v + 0.5) / PF_SS - cy;
            double c = value * pf_coverage(sqrt(dx * dx + dy * dy), r);
            double *px = canvas + (size_t)v * (size_t)S + (size_t)u;
            *px = c > *px ? c : *px;
        }
}

void pf_render(const pf_config *c, const pf_scene *s, double *canvas, uint8_t *pix)
{
    int W = c->res, S = W * PF_SS;
    memset(canvas, 0, (size_t)S * (size_t)S * sizeof *canvas);
    for (int32_t k = 0; k < s->n_snakes; k++) {
        /* snakes2 scales the targets' paddles by paddle_contrast, not the distractors' */
        double value = c->snake_contrast * (k < 2 ? c->paddle_contrast : 1.0);
        for (int32_t p = s->first[k]; p < s->first[k + 1]; p++)
            pf_draw_segment(canvas, S, &s->paddle[p], c->thickness, value);
    }
    for (int m = 0; m < 2; m++)
        pf_draw_disc(canvas, S, s->marker_x[m], s->marker_y[m], c->marker_r, 1.0);
    double brightest = 0;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            double sum = 0;
            for (int dv = 0; dv < PF_SS; dv++)
                for (int du = 0; du < PF_SS; du++)
                    sum += canvas[(size_t)(y * PF_SS + dv) * (size_t)S + (size_t)(x * PF_SS + du)];
            /* the box average goes back into the canvas's first W*W cells, which no later pixel reads */
            canvas[(size_t)y * (size_t)W + (size_t)x] = sum / (PF_SS * PF_SS);
            brightest = pf_max(brightest, sum / (PF_SS * PF_SS));
        }
    for (int64_t p = 0; p < (int64_t)W * W; p++)
        pix[p] = pf_quantise(brightest > 0 ? canvas[p] / brightest : 0);
}
