/* One chunk of the `titans` forward in its parallel form (docs/kernels/titans.md).
 *
 * Within a chunk of c keys every gradient is taken at the chunk's initial
 * memory W0 (the paper's mini-batch gradient descent), so the surprises
 * u_s = beta_s E_s k^_s^T with E_s = W0 k^_s - v_s are known up front, and
 * the per-token momentum and decay unroll into scalar coefficients:
 *   Sigma_r = M_r Sigma0 - sum_{s<=r} M_rs u_s,     M_rs = eta_{s+1} ... eta_r
 *   W_r     = A_r W0 + d_r Sigma0 - sum_{s<=r} D_rs u_s,
 *   D_rs    = a_r D_{r-1,s} + M_rs,   d_r = a_r d_{r-1} + M_r,   A_r = a_0 ... a_r
 * (M_r = eta_0 ... eta_r). Every coefficient is a sum of products of numbers
 * in [0, 1]: no division, nothing overflows, and eta = 0 or a = 0 are exact.
 * The reads are then Y = diag(A) Q^ H0 + diag(d) Q^ S0 + (Q^ K^^T (.) C) E
 * with C_rs = -D_rs beta_s on s <= r: three sgemms per query head (Q^ K^^T,
 * one over [H0; S0] for both reads of the carried state, and P E). */
#include "titans_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* The chunk's scratch (carved from ws; sizes in titans_plan_make). */
typedef struct {
    float *kn, *qn, *qx;   /* K^ [c x Dk], Q^ of one head [c x Dk], [diag(A)Q^, diag(d)Q^] [c x 2Dk] */
    float *E, *P;          /* surprises' errors [c x Dv], in-chunk weights [c x c] */
    float *beta, *a, *eta; /* gates [c] */
    double *Ap, *dS, *Mf;  /* A, d, M at r = -1 .. c-1 (index r + 1) [c + 1] */
    double *Dm, *Mrow;     /* D_rs at r = -1 .. c-1 [(c + 1) x c]; M_rs of the current r [c] */
} chunk_bufs;

static chunk_bufs carve(float *ws, int64_t c, int64_t Dk, int64_t Dv)
{
    chunk_bufs u;
    size_t cp = (size_t)c + 1;
    u.kn = mem_take(&ws, (size_t)(c * Dk)), u.qn = mem_take(&ws, (size_t)(c * Dk));
    u.qx = mem_take(&ws, (size_t)(2 * c * Dk)), u.E = mem_take(&ws, (size_t)(c * Dv));
    u.P = mem_take(&ws, (size_t)(c * c));
    u.beta = mem_take(&ws, (size_t)c), u.a = mem_take(&ws, (size_t)c), u.eta = mem_take(&ws, (size_t)c);
    u.Ap = (double *)mem_take(&ws, 2 * cp), u.dS = (double *)mem_take(&ws, 2 * cp);
    u.Mf = (double *)mem_take(&ws, 2 * cp), u.Dm = (double *)mem_take(&ws, 2 * cp * (size_t)c);
    u.Mrow = (double *)mem_take(&ws, 2 * (size_t)c);
    return u;
}

size_t titans_chunk_floats(int64_t c, int64_t Dk, int64_t Dv)
{
    size_t r16 = 15, cp = (size_t)c + 1;
    size_t f = 4 * (((size_t)(c * Dk) + r16) / 16 * 16) + ((size_t)(c * Dv) + r16) / 16 * 16 +
               ((size_t)(c * c) + r16) / 16 * 16 + 3 * (((size_t)c + r16) / 16 * 16);
    return f + 3 * ((2 * cp + r16) / 16 * 16) + (2 * cp * (size_t)c + r16) / 16 * 16 + (2 * (size_t)c + r16) / 16 * 16;
}

/* Normalised keys, gates and the coefficients A, d, M, D of the chunk. */
static void load_chunk(const titans_task *t, int64_t j0, int64_t c, chunk_bufs *u)
{
    int64_t Dk = t->pl->Dk;
    for (int64_t r = 0; r < c; r++) {
        const float *k = attn_at(&t->io->k, t->b, t->hk, j0 + r);
        float rn = titans_rnorm(k, Dk);
        for (int64_t d = 0; d < Dk; d++)
            u->kn[r * Dk + d] = k[d] * rn;
        titans_gates(t, j0 + r, &u->beta[r], &u->a[r], &u->eta[r]);
    }
    u->Ap[0] = 1, u->dS[0] = 0, u->Mf[0] = 1;
    memset(u->Dm, 0, sizeof(double) * (size_t)c);
    for (int64_t r = 0; r < c; r++) {
        double a = u->a[r], eta = u->eta[r];
        double *Dr = u->Dm + (r + 1) * c;
        const double *Dp = u->Dm + r * c;
        for (int64_t s = 0; s < r; s++) {
            u->Mrow[s] *= eta;
            Dr[s] = a * Dp[s] + u->Mrow[s];
        }
        u->Mrow[r] = 1, Dr[r] = 1;
        for (int64_t s = r + 1; s < c; s++)
            Dr[s] = 0;
        u->Ap[r + 1] = a * u->Ap[r];
        u->Mf[r + 1] = eta * u->Mf[r];
        u->dS[r + 1] = a * u->dS[r] + u->Mf[r + 1];
    }
}

/* Output rows [j0, j0+c) of query head h. Row r reads the memory after
 * step r (index r + 1 of the coefficients) or before it (index r). */
static double chunk_output(const titans_task *t, int64_t h, int64_t j0, int64_t c, int fresh, const float *H,
                           chunk_bufs *u)
{
    const titans_plan *pl = t->pl;
    int64_t Dk = pl->Dk, Dv = pl->Dv, shift = pl->read_before ? 0 : 1;
    float *o = attn_at(&t->io->o, t->b, h, j0);
    int lo = (int)t->io->o.sn;
    for (int64_t r = 0; r < c; r++) {
        const float *q = attn_at(&t->io->q, t->b, h, j0 + r);
        float rn = titans_rnorm(q, Dk), fa = (float)u->Ap[r + shift], fd = (float)u->dS[r + shift];
        for (int64_t d = 0; d < Dk; d++) {
            float qh = q[d] * rn;
            u->qn[r * Dk + d] = qh;
            u->qx[r * 2 * Dk + d] = fa * qh;
            u->qx[r * 2 * Dk + Dk + d] = fd * qh;
        }
    }
    // P = Q^ K^^T (.) C, C_rs = -D_{r', s} beta_s for s <= r' (r' = r or r - 1)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c, (int)c, (int)Dk, 1.0f, u->qn, (int)Dk, u->kn,
                (int)Dk, 0.0f, u->P, (int)c);
    for (int64_t r = 0; r < c; r++) {
        const double *Dr = u->Dm + (r + shift) * c;
        for (int64_t s = 0; s < c; s++)
            u->P[r * c + s] = s < r + shift ? u->P[r * c + s] * (float)(-Dr[s] * u->beta[s]) : 0.0f;
    }
    double flops = 2.0 * (double)(c * c) * (double)(Dk + Dv);
    if (!fresh) { // Y = [diag(A) Q^, diag(d) Q^] [H0; S0]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)(2 * Dk), 1.0f, u->qx,
                    (int)(2 * Dk), H, (int)Dv, 0.0f, o, lo);
        flops += 4.0 * (double)(c * Dk) * (double)Dv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)c, 1.0f, u->P, (int)c, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, o, lo);
    return flops;
}

/* H <- A H0 + d S0 - K^^T diag(D_{c-1,s} beta_s) E, S <- M S0 - K^^T diag(M_{c-1,s} beta_s) E.
 * qx is free here: it holds the two row-scaled copies of K^. */
static double advance_state(const titans_task *t, int64_t c, int fresh, float *H, chunk_bufs *u)
{
    int64_t Dk = t->pl->Dk, Dv = t->pl->Dv, DkDv = Dk * Dv;
    float *S = H + DkDv, *kd = u->qx, *km = u->qx + c * Dk;
    const double *Dl = u->Dm + c * c;
    double m = 1; /* M_{c-1,s} = eta_{s+1} ... eta_{c-1}, built from the last row down */
    for (int64_t s = c - 1; s >= 0; s--) {
        float fd = (float)(Dl[s] * u->beta[s]), fm = (float)(m * u->beta[s]);
        for (int64_t d = 0; d < Dk; d++) {
            kd[s * Dk + d] = fd * u->kn[s * Dk + d];
            km[s * Dk + d] = fm * u->kn[s * Dk + d];
        }
        m *= u->eta[s];
    }
    if (!fresh) {
        float fa = (float)u->Ap[c], fdS = (float)u->dS[c], fM = (float)u->Mf[c];
        for (int64_t i = 0; i < DkDv; i++) {
            H[i] = fa * H[i] + fdS * S[i];
            S[i] *= fM;
        }
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)c, -1.0f, kd, (int)Dk, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, H, (int)Dv);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)c, -1.0f, km, (int)Dk, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, S, (int)Dv);
    return 4.0 * (double)(c * Dk) * (double)Dv;
}

double titans_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o)
{
    const titans_task *t = task;
    const titans_plan *pl = t->pl;
    int64_t Dk = pl->Dk, Dv = pl->Dv;
    chunk_bufs u = carve(ws, c, Dk, Dv);
    load_chunk(t, j0, c, &u);
    // E = K^ H0 - V: every error at the chunk's initial memory
    double flops = 0;
    if (!fresh) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)Dk, 1.0f, u.kn, (int)Dk, H,
                    (int)Dv, 0.0f, u.E, (int)Dv);
        flops += 2.0 * (double)(c * Dk) * (double)Dv;
    }
    for (int64_t r = 0; r < c; r++) {
        const float *v = attn_at(&t->io->v, t->b, t->hk, j0 + r);
        for (int64_t d = 0; d < Dv; d++)
            u.E[r * Dv + d] = (fresh ? 0.0f : u.E[r * Dv + d]) - v[d];
    }
    for (int64_t h = t->hk * pl->G; write_o && h < (t->hk + 1) * pl->G; h++)
        flops += chunk_output(t, h, j0, c, fresh, H, &u);
    return flops + advance_state(t, c, fresh, H, &u);
}
