/* Plain double reference of `nystrom` (Xiong et al. 2021; the formulas are
 * in nystrom.h), one (batch, query head) at a time with plain loops and no
 * code shared with the fp32 kernel except the segment boundaries: the
 * landmark means, the three softmax matrices, the iteration
 * (attn_nystrom_pinv64), O = F (Z (Bt V)) and the conv skip. A padded
 * sequence is computed at its own length; its padding rows of O are 0. */
#include "nystrom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row s = mean of rows of segment s of head (b, h) of t (n rows, mm segments). */
static void means64(const attn_tensor_f64 *t, int64_t b, int64_t h, int64_t n, int64_t mm, double *out)
{
    int64_t D = t->D;
    for (int64_t s = 0; s < mm; s++) {
        int64_t r0 = attn_nystrom_seg(s, n, mm), r1 = attn_nystrom_seg(s + 1, n, mm);
        for (int64_t d = 0; d < D; d++) {
            double sum = 0;
            for (int64_t r = r0; r < r1; r++)
                sum += attn_at64(t, b, h, r)[d];
            out[s * D + d] = sum / (double)(r1 - r0);
        }
    }
}

/* S[i][j] = softmax_j(sc <x_i, y_j>) for rows x_i (rows of X, stride D) and y_j (cols of Y). */
static void softmax_scores64(const double *X, int64_t rows, const double *Y, int64_t cols, int64_t D, double sc,
                             double *S)
{
    for (int64_t i = 0; i < rows; i++) {
        double *s = S + i * cols, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++) {
            double dot = 0;
            for (int64_t d = 0; d < D; d++)
                dot += X[i * D + d] * Y[j * D + d];
            s[j] = sc * dot;
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < cols; j++)
            sum += s[j] = exp(s[j] - mx);
        for (int64_t j = 0; j < cols; j++)
            s[j] /= sum;
    }
}

/* Rows [0, n) of head (b, h) of t copied into a contiguous n x D block. */
static void rows64(const attn_tensor_f64 *t, int64_t b, int64_t h, int64_t n, double *out)
{
    for (int64_t r = 0; r < n; r++)
        memcpy(out + r * t->D, attn_at64(t, b, h, r), sizeof(double) * (size_t)t->D);
}

/* C (r x c) = X (r x k) Y (k x c), all contiguous. */
static void matmul64(const double *X, const double *Y, int64_t r, int64_t k, int64_t c, double *C)
{
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++)
                s += X[i * k + l] * Y[l * c + j];
            C[i * c + j] = s;
        }
}

typedef struct {
    double *Qt, *Kt, *Qr, *Kr, *Vr, *F, *A, *Bt, *Z, *tmp, *Y, *X;
} ny_ref_bufs;

static void head64(const attn_args *a, const ny_plan *pl, const attn_io64 *io, int64_t b, int64_t h, ny_ref_bufs *w)
{
    int64_t n = attn_q_len(a, b), mm = attn_nystrom_landmarks(pl, n), D = a->D, Dv = attn_dv(a);
    int64_t hk = h / (a->H / a->H_kv);
    double sc = attn_scale(a);
    means64(&io->q, b, h, n, mm, w->Qt);
    means64(&io->k, b, hk, n, mm, w->Kt);
    rows64(&io->q, b, h, n, w->Qr);
    rows64(&io->k, b, hk, n, w->Kr);
    rows64(&io->v, b, hk, n, w->Vr);
    softmax_scores64(w->Qr, n, w->Kt, mm, D, sc, w->F);
    softmax_scores64(w->Qt, mm, w->Kt, mm, D, sc, w->A);
    softmax_scores64(w->Qt, mm, w->Kr, n, D, sc, w->Bt);
    attn_nystrom_pinv64(w->A, mm, pl->iters, w->Z, w->tmp);
    matmul64(w->Bt, w->Vr, mm, n, Dv, w->Y);
    matmul64(w->Z, w->Y, mm, mm, Dv, w->X);
    const double *taps = pl->conv ? attn_at64(&io->w, 0, h, 0) : NULL;
    for (int64_t i = 0; i < a->Nq; i++) {
        double *o = attn_at64(&io->o, b, h, i);
        for (int64_t d = 0; d < Dv; d++) {
            double s = 0;
            if (i < n) {
                for (int64_t l = 0; l < mm; l++)
                    s += w->F[i * mm + l] * w->X[l * Dv + d];
                for (int64_t tau = 0; tau < pl->conv; tau++) {
                    int64_t src = i + tau - pl->conv / 2;
                    if (src >= 0 && src < n)
                        s += taps[tau] * w->Vr[src * Dv + d];
                }
            }
            o[d] = s;
        }
    }
}

int attn_nystrom_ref_forward(const attn_args *a, const attn_io64 *io)
{
    ny_plan pl;
    int rc = attn_nystrom_plan(&pl, a);
    if (rc)
        return rc;
    int64_t m = pl.m, N = a->Nk, D = a->D, Dv = attn_dv(a);
    size_t sizes[] = {m * D, m * D, N * D, N * D, N * Dv, N * m, m * m, m * N, m * m, 3 * m * m, m * Dv, m * Dv};
    enum { NBUF = sizeof sizes / sizeof *sizes };
    double *buf[NBUF];
    int ok = 1;
    for (int i = 0; i < NBUF; i++)
        ok = (buf[i] = malloc(sizeof(double) * (sizes[i] ? sizes[i] : 1))) && ok;
    ny_ref_bufs w = {buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7], buf[8], buf[9], buf[10], buf[11]};
    for (int64_t b = 0; ok && b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            if (attn_q_len(a, b) > 0)
                head64(a, &pl, io, b, h, &w);
            else
                for (int64_t i = 0; i < a->Nq; i++)
                    memset(attn_at64(&io->o, b, h, i), 0, sizeof(double) * (size_t)Dv);
    for (int i = 0; i < NBUF; i++)
        free(buf[i]);
    return ok ? 0 : attn_fail(ATTN_ENOMEM, "nystrom reference: out of memory for N=%lld m=%lld", (long long)N,
                              (long long)m);
}
