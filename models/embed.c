/* Input embeddings: token table with optional learned positions (GPT-2),
 * sinusoidal positions (Vaswani et al. 2017, section 3.5) and rotary
 * positions on a (B,N,H,D) view (Su et al. 2021, RoFormer eq. 34). */
#include "layers.h"

#include <math.h>

/* channels per task of the scatter-add backward: each task owns a column
 * range of wte and walks the tokens in order, so no two threads race and the
 * sums do not depend on the thread count */
#define EMBED_COLS 16

size_t nn_embed_param_count(int64_t V, int64_t C, int64_t Nmax)
{
    nn_embed l;
    nn_blob cnt = {0};
    return nn_embed_bind(&l, V, C, Nmax, &cnt) ? SIZE_MAX : cnt.used;
}

int nn_embed_bind(nn_embed *l, int64_t V, int64_t C, int64_t Nmax, nn_blob *blob)
{
    if (V < 1 || C < 1 || Nmax < 0)
        return attn_fail(ATTN_EINVAL, "embed: expected V, C >= 1 and Nmax >= 0, found V=%lld C=%lld Nmax=%lld",
                         (long long)V, (long long)C, (long long)Nmax);
    *l = (nn_embed){.V = V, .C = C, .Nmax = Nmax};
    if ((l->off_wte = nn_blob_take(blob, (size_t)(V * C), &l->wte, &l->dwte)) == SIZE_MAX)
        return ATTN_EINVAL;
    if (Nmax && (l->off_wpe = nn_blob_take(blob, (size_t)(Nmax * C), &l->wpe, &l->dwpe)) == SIZE_MAX)
        return ATTN_EINVAL;
    return 0;
}

void nn_embed_init(const nn_embed *l, attn_rng *r)
{
    nn_fill_normal(l->wte, (size_t)(l->V * l->C), 0.02f, r);
    if (l->Nmax)
        nn_fill_normal(l->wpe, (size_t)(l->Nmax * l->C), 0.02f, r);
}

static int embed_check(const nn_embed *l, const int32_t *tok, int64_t B, int64_t N)
{
    if (l->Nmax && N > l->Nmax)
        return attn_fail(ATTN_EINVAL, "embed: expected N <= %lld learned positions, found N=%lld",
                         (long long)l->Nmax, (long long)N);
    for (int64_t t = 0; t < B * N; t++)
        if (tok[t] < 0 || tok[t] >= l->V)
            return attn_fail(ATTN_EINVAL, "embed: expected token ids in [0, %lld), found %d at %lld",
                             (long long)l->V, tok[t], (long long)t);
    return 0;
}

// tok is (B,N) in [0,V); out is (B,N,C) = wte[tok] (+ wpe[n])
int nn_embed_forward(const nn_embed *l, const int32_t *tok, float *out, int64_t B, int64_t N, int threads)
{
    int rc = embed_check(l, tok, B, N);
    if (rc)
        return rc;
    int64_t C = l->C;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < B * N; t++) {
        const float *e = l->wte + tok[t] * C, *p = l->Nmax ? l->wpe + (t % N) * C : NULL;
        for (int64_t c = 0; c < C; c++)
            out[t * C + c] = p ? e[c] + p[c] : e[c];
    }
    return 0;
}

// dout is (B,N,C): dwte[tok] += dout, dwpe[n] += sum_b dout
int nn_embed_backward(const nn_embed *l, const int32_t *tok, const float *dout, int64_t B, int64_t N,
                      int threads)
{
    int rc = embed_check(l, tok, B, N);
    if (rc)
        return rc;
    int64_t C = l->C, tasks = (C + EMBED_COLS - 1) / EMBED_COLS;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < tasks; k++) {
        int64_t c0 = k * EMBED_COLS, c1 = c0 + EMBED_COLS < C ? c0 + EMBED_COLS : C;
        for (int64_t t = 0; t < B * N; t++)
            for (int64_t c = c0; c < c1; c++)
                l->dwte[tok[t] * C + c] += dout[t * C + c];
    }
    if (!l->Nmax)
        return 0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++)
                l->dwpe[n * C + c] += dout[(b * N + n) * C + c];
    return 0;
}

int nn_embed_forward_ref(const nn_embed *l, const double *P, const int32_t *tok, double *out, int64_t B,
                         int64_t N)
{
    int rc = embed_check(l, tok, B, N);
    for (int64_t t = 0; !rc && t < B * N; t++)
        for (int64_t c = 0; c < l->C; c++)
            out[t * l->C + c] = P[l->off_wte + tok[t] * l->C + c] +
                                (l->Nmax ? P[l->off_wpe + (t % N) * l->C + c] : 0.0);
    return rc;
}

int nn_embed_backward_ref(const nn_embed *l, const int32_t *tok, const double *dout, double *dP, int64_t B,
                          int64_t N)
{
    int rc = embed_check(l, tok, B, N);
    for (int64_t t = 0; !rc && t < B * N; t++)
        for (int64_t c = 0; c < l->C; c++) {
            dP[l->off_wte + tok[t] * l->C + c] += dout[t * l->C + c];
            if (l->Nmax)
                dP[l->off_wpe + (t % N) * l->C + c] += dout[t * l->C + c];
        }
    return rc;
}

/* PE(n, 2i) = sin(n / 10000^(2i/C)), PE(n, 2i+1) = cos(n / 10000^(2i/C)) (Vaswani 3.5) */
static double sinusoid(int64_t n, int64_t c, int64_t C)
{
    double w = pow(10000.0, -(double)(c & ~(int64_t)1) / (double)C), a = (double)n * w;
    return (c & 1) ? cos(a) : sin(a);
}

// x is (B,N,C), += PE
void nn_sinusoid_add(float *x, int64_t B, int64_t N, int64_t C, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float pe = (float)sinusoid(n, c, C);
            for (int64_t b = 0; b < B; b++)
                x[(b * N + n) * C + c] += pe;
        }
}

void nn_sinusoid_add_ref(double *x, int64_t B, int64_t N, int64_t C)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                x[(b * N + n) * C + c] += sinusoid(n, c, C);
}

/* ---- RoPE: the pair (2i, 2i+1) of position n rotates by theta = n base^(-2i/D) */

static double rope_angle(int64_t n, int64_t i, int64_t D, double base)
{
    return (double)n * pow(base, -2.0 * (double)i / (double)D);
}

size_t nn_rope_table_floats(int64_t N, int64_t D) { return (size_t)(N * (D / 2) * 2); }

void nn_rope_table(float *cs, int64_t N, int64_t D, double base)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < D / 2; i++) {
            double a = rope_angle(n, i, D, base);
            cs[(n * (D / 2) + i) * 2] = (float)cos(a);
            cs[(n * (D / 2) + i) * 2 + 1] = (float)sin(a);
        }
}

/* x (B,N,H,D) in place: R(theta) (sign = +1) or R(theta)^T (sign = -1) */
static void rope_apply(float *x, const float *cs, int64_t B, int64_t N, int64_t H, int64_t D, float sign,
                       int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < B * N; t++) {
        const float *r = cs + (t % N) * D;   /* (D/2) pairs of (cos, sin) */
        for (int64_t h = 0; h < H; h++) {
            float *p = x + (t * H + h) * D;
            for (int64_t i = 0; i < D / 2; i++) {
                float c = r[2 * i], s = sign * r[2 * i + 1], x0 = p[2 * i], x1 = p[2 * i + 1];
                p[2 * i] = x0 * c - x1 * s;
                p[2 * i + 1] = x0 * s + x1 * c;
            }
        }
    }
}

// x is (B,N,H,D), rotated in place
void nn_rope_forward(float *x, const float *cs, int64_t B, int64_t N, int64_t H, int64_t D, int threads)
{
    rope_apply(x, cs, B, N, H, D, 1.0f, threads);
}

// dx is (B,N,H,D): in place, dx <- R^T dx (a rotation's inverse is its transpose)
void nn_rope_backward(float *dx, const float *cs, int64_t B, int64_t N, int64_t H, int64_t D, int threads)
{
    rope_apply(dx, cs, B, N, H, D, -1.0f, threads);
}

void nn_rope_forward_ref(const double *x, double *y, int64_t B, int64_t N, int64_t H, int64_t D, double base)
{
    for (int64_t t = 0; t < B * N; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < D / 2; i++) {
                double a = rope_angle(t % N, i, D, base), c = cos(a), s = sin(a);
                const double *p = x + (t * H + h) * D + 2 * i;
                y[(t * H + h) * D + 2 * i] = p[0] * c - p[1] * s;
                y[(t * H + h) * D + 2 * i + 1] = p[0] * s + p[1] * c;
            }
}

void nn_rope_backward_ref(const double *dy, double *dx, int64_t B, int64_t N, int64_t H, int64_t D,
                          double base)
{
    for (int64_t t = 0; t < B * N; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < D / 2; i++) {
                double a = rope_angle(t % N, i, D, base), c = cos(a), s = sin(a);
                const double *g = dy + (t * H + h) * D + 2 * i;
                dx[(t * H + h) * D + 2 * i] += g[0] * c + g[1] * s;
                dx[(t * H + h) * D + 2 * i + 1] += -g[0] * s + g[1] * c;
            }
}
