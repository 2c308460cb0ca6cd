/* One chunk of the `atlas` forward in its parallel form (docs/kernels/atlas.md).
 *
 * Within a chunk of n keys starting at t0 every error is taken at the
 * chunk's start memory H0, so the error of each window row i is known up
 * front -- for the rows R = [lo(t0), t0 + n) that some step's window touches,
 * including up to c - 1 rows before the chunk -- and so is each row's
 * gradient piece u_i = 2 gamma_i p_i E_i^T (p_i the unit features of key i). Step s's gradient is the mean of
 * the pieces of its window, G_s = w_s sum_{i = s-c+1}^{s} u_i (w_s = 1 / n_s), and momentum and
 * retention unroll into scalar coefficients (r, s steps of the chunk):
 *   S_r = M_r S0 + sum_{s<=r} M_rs G_s,            M_rs = theta_{s+1} ... theta_r
 *   H_r = A_r H0 - d_r S0 - sum_{s<=r} D_rs G_s,
 *   D_rs = alpha_r D_{r-1,s} + eta_r M_rs,  d_r = alpha_r d_{r-1} + eta_r M_r,  A_r = alpha_0 ... alpha_r
 * so H_r = A_r H0 - d_r S0 - sum_i P_ri u_i with P_ri = sum of D_rs w_s over the
 * steps s <= r whose window holds i (a difference of prefix sums). Reads:
 *   Y = [diag(A) phi(Q), -diag(d) phi(Q)] [H0; S0] + (phi(Q) phi(K_R)^T (.) C) E,
 * C_ri = -2 gamma_i P_ri: three sgemms per query head. */
#include "atlas_internal.h"

#include <cblas.h>
#include <string.h>

/* The chunk's scratch (carved from ws; sizes in atlas_chunk_floats). */
typedef struct {
    float *phk, *kd, *km;       /* phi(K^_R) and two row-scaled copies [R x F] */
    float *xn;                  /* normalised rows of K_R or Q [R x D] */
    float *phq, *qx;            /* phi(Q) of one head [n x F], [diag(A) phi(Q), -diag(d) phi(Q)] [n x 2F] */
    float *E, *P;               /* window rows' errors [R x Dv], in-chunk weights [n x R] */
    float *eta, *alpha, *theta; /* step gates [n] */
    float *gam;                 /* window weights of the rows [R] */
    double *Ap, *dS, *Mf;       /* A, d, M at r = -1 .. n-1 (index r + 1) [n + 1] */
    double *Dm, *Mrow, *pre;    /* D_rs at r = -1 .. n-1 [(n + 1) x n]; M_{r,s} [n]; prefix sums [n + 1] */
    double *wn;                 /* 1 / n_s: the Omega loss is the mean over step s's window [n] */
} chunk_bufs;

static chunk_bufs carve(float *ws, const atlas_plan *pl)
{
    chunk_bufs u;
    size_t n = (size_t)pl->C, R = (size_t)(pl->C + pl->c - 1), F = (size_t)pl->F, Dv = (size_t)pl->Dv;
    u.phk = mem_take(&ws, R * F), u.kd = mem_take(&ws, R * F), u.km = mem_take(&ws, R * F);
    u.xn = mem_take(&ws, R * (size_t)pl->D), u.wn = (double *)mem_take(&ws, 2 * n);
    u.phq = mem_take(&ws, n * F), u.qx = mem_take(&ws, 2 * n * F);
    u.E = mem_take(&ws, R * Dv), u.P = mem_take(&ws, n * R);
    u.eta = mem_take(&ws, n), u.alpha = mem_take(&ws, n), u.theta = mem_take(&ws, n);
    u.gam = mem_take(&ws, R);
    u.Ap = (double *)mem_take(&ws, 2 * (n + 1)), u.dS = (double *)mem_take(&ws, 2 * (n + 1));
    u.Mf = (double *)mem_take(&ws, 2 * (n + 1)), u.Dm = (double *)mem_take(&ws, 2 * (n + 1) * n);
    u.Mrow = (double *)mem_take(&ws, 2 * n), u.pre = (double *)mem_take(&ws, 2 * (n + 1));
    return u;
}

size_t atlas_chunk_floats(const atlas_plan *pl)
{
    size_t n = (size_t)pl->C, R = (size_t)(pl->C + pl->c - 1), F = (size_t)pl->F, Dv = (size_t)pl->Dv;
    return 3 * mem_round(R * F) + mem_round(R * (size_t)pl->D) + mem_round(2 * n) + mem_round(n * F) +
           mem_round(2 * n * F) + mem_round(R * Dv) + mem_round(n * R) + 3 * mem_round(n) + mem_round(R) +
           4 * mem_round(2 * (n + 1)) + mem_round(2 * (n + 1) * n) + mem_round(2 * n);
}

/* Gates of the chunk's steps and rows, and the coefficients A, d, M, D. */
static void load_coefficients(const atlas_task *t, int64_t lo, int64_t j0, int64_t n, chunk_bufs *u)
{
    for (int64_t i = lo; i < j0 + n; i++) {
        float eta, alpha, theta;
        atlas_gates(t, i, &eta, &alpha, &theta, &u->gam[i - lo]);
        if (i >= j0) {
            u->eta[i - j0] = eta, u->alpha[i - j0] = alpha, u->theta[i - j0] = theta;
            u->wn[i - j0] = 1.0 / (double)atlas_window_rows(t->a, i, t->pl->c);
        }
    }
    u->Ap[0] = 1, u->dS[0] = 0, u->Mf[0] = 1;
    memset(u->Dm, 0, sizeof(double) * (size_t)n);
    for (int64_t r = 0; r < n; r++) {
        double al = u->alpha[r], et = u->eta[r], th = u->theta[r];
        double *Dr = u->Dm + (r + 1) * n;
        const double *Dp = u->Dm + r * n;
        for (int64_t s = 0; s < r; s++)
            u->Mrow[s] *= th;
        u->Mrow[r] = 1;
        for (int64_t s = 0; s <= r; s++)
            Dr[s] = al * Dp[s] + et * u->Mrow[s];
        for (int64_t s = r + 1; s < n; s++)
            Dr[s] = 0;
        u->Ap[r + 1] = al * u->Ap[r];
        u->Mf[r + 1] = th * u->Mf[r];
        u->dS[r + 1] = al * u->dS[r] + et * u->Mf[r + 1];
    }
}

/* pre = prefix sums of coef[0..n); returns sum of coef[s] over the steps s <= r whose window holds row il
 * (il relative to the chunk start, negative before it): s in [max(il, 0), min(il + c - 1, r)]. */
static double window_sum(const double *pre, int64_t il, int64_t c, int64_t r)
{
    int64_t s0 = il > 0 ? il : 0, s1 = il + c - 1 < r ? il + c - 1 : r;
    return s1 < s0 ? 0.0 : pre[s1 + 1] - pre[s0];
}

/* pre = prefix sums of coef[s] w[s] (w: the steps' window weights). */
static void prefix(double *pre, const double *coef, const double *w, int64_t n)
{
    pre[0] = 0;
    for (int64_t s = 0; s < n; s++)
        pre[s + 1] = pre[s] + coef[s] * w[s];
}

/* Output rows [j0, j0+n) of query head h; R = j0 + n - lo window rows. */
static double chunk_output(const atlas_task *t, int64_t h, int64_t lo, int64_t j0, int64_t n, int fresh,
                           const float *H, chunk_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int64_t F = pl->F, Dv = pl->Dv, R = j0 + n - lo;
    float *o = attn_at(&t->io->o, t->b, h, j0);
    int ldo = (int)t->io->o.sn;
    atlas_phi(pl, attn_at(&t->io->q, t->b, h, j0), t->io->q.sn, n, u->xn, u->phq);
    for (int64_t r = 0; r < n; r++) {
        float fa = (float)u->Ap[r + 1], fd = (float)-u->dS[r + 1];
        for (int64_t f = 0; f < F; f++) {
            u->qx[r * 2 * F + f] = fa * u->phq[r * F + f];
            u->qx[r * 2 * F + F + f] = fd * u->phq[r * F + f];
        }
    }
    // P = phi(Q) phi(K_R)^T (.) C,  C_ri = -2 gamma_i P_ri
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)R, (int)F, 1.0f, u->phq, (int)F, u->phk,
                (int)F, 0.0f, u->P, (int)R);
    for (int64_t r = 0; r < n; r++) {
        prefix(u->pre, u->Dm + (r + 1) * n, u->wn, n);
        for (int64_t i = 0; i < R; i++)
            u->P[r * R + i] *= (float)(-2.0 * u->gam[i] * window_sum(u->pre, i + lo - j0, pl->c, r));
    }
    double flops = 2.0 * (double)(n * R) * (double)(F + Dv);
    if (!fresh) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv, (int)(2 * F), 1.0f, u->qx,
                    (int)(2 * F), H, (int)Dv, 0.0f, o, ldo);
        flops += 4.0 * (double)(n * F) * (double)Dv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv, (int)R, 1.0f, u->P, (int)R, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, o, ldo);
    return flops;
}

/* H <- A H0 - d S0 - phi(K_R)^T diag(2 gamma P_last) E,  S <- M S0 + phi(K_R)^T diag(2 gamma Q_last) E,
 * Q_last the window sums of M_{n-1,s}. */
static double advance_state(const atlas_task *t, int64_t lo, int64_t j0, int64_t n, int fresh, float *H,
                            chunk_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int64_t F = pl->F, Dv = pl->Dv, FDv = F * Dv, R = j0 + n - lo;
    float *S = H + FDv;
    prefix(u->pre, u->Dm + n * n, u->wn, n);
    for (int64_t i = 0; i < R; i++) {
        float fd = (float)(2.0 * u->gam[i] * window_sum(u->pre, i + lo - j0, pl->c, n - 1));
        for (int64_t f = 0; f < F; f++)
            u->kd[i * F + f] = fd * u->phk[i * F + f];
    }
    prefix(u->pre, u->Mrow, u->wn, n); /* the D sums are taken: pre now holds M's */
    for (int64_t i = 0; i < R; i++) {
        float fm = (float)(2.0 * u->gam[i] * window_sum(u->pre, i + lo - j0, pl->c, n - 1));
        for (int64_t f = 0; f < F; f++)
            u->km[i * F + f] = fm * u->phk[i * F + f];
    }
    if (!fresh) {
        float fa = (float)u->Ap[n], fdS = (float)u->dS[n], fM = (float)u->Mf[n];
        for (int64_t x = 0; x < FDv; x++) {
            H[x] = fa * H[x] - fdS * S[x];
            S[x] *= fM;
        }
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, (int)Dv, (int)R, -1.0f, u->kd, (int)F, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, H, (int)Dv);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, (int)Dv, (int)R, 1.0f, u->km, (int)F, u->E,
                (int)Dv, fresh ? 0.0f : 1.0f, S, (int)Dv);
    return 4.0 * (double)(R * F) * (double)Dv;
}

/* opt=muon: NS5 is not linear, so the chunk's steps are walked one by one:
 * S = theta S + w sum_{i in window} 2 gamma_i p_i E_i^T (errors at H0, as
 * above), H = alpha H - eta NS5(S), outputs H^T phi^(q). ns: the NS5 scratch
 * and NS5(S) after the chunk scratch. */
static double muon_steps(const atlas_task *t, int64_t lo, int64_t j0, int64_t n, int fresh, float *H,
                         chunk_bufs *u, float *ns, int write_o)
{
    const atlas_plan *pl = t->pl;
    int64_t F = pl->F, Dv = pl->Dv, FDv = F * Dv;
    float *S = H + FDv, *Y = ns + atlas_ns5_floats(pl);
    if (fresh)
        memset(H, 0, sizeof(float) * (size_t)(2 * FDv));
    double flops = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t j = j0 + r, wlo = atlas_window_lo(t->a, j, pl->c);
        cblas_sscal((int)FDv, u->theta[r], S, 1);
        for (int64_t i = wlo; i <= j; i++)
            cblas_sger(CblasRowMajor, (int)F, (int)Dv, (float)(2.0 * u->gam[i - lo] * u->wn[r]), u->phk + (i - lo) * F,
                       1, u->E + (i - lo) * Dv, 1, S, (int)Dv);
        atlas_ns5(pl, S, Y, ns);
        for (int64_t x = 0; x < FDv; x++)
            H[x] = u->alpha[r] * H[x] - u->eta[r] * Y[x];
        for (int64_t h = t->hk * pl->G; write_o && h < (t->hk + 1) * pl->G; h++) {
            atlas_phi(pl, attn_at(&t->io->q, t->b, h, j), pl->D, 1, u->xn, u->phq);
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)F, (int)Dv, 1.0f, H, (int)Dv, u->phq, 1, 0.0f,
                        attn_at(&t->io->o, t->b, h, j), 1);
            flops += 2.0 * (double)FDv;
        }
        flops += (double)FDv * (2.0 * (double)(j - wlo + 1) + 4.0) +
                 ATLAS_NS_STEPS * (4.0 * (double)FDv * (double)Dv + 2.0 * (double)(Dv * Dv * Dv));
    }
    return flops;
}

double atlas_chunk(const void *task, int64_t j0, int64_t n, int fresh, float *H, float *ws, int write_o)
{
    const atlas_task *t = task;
    const atlas_plan *pl = t->pl;
    int64_t F = pl->F, Dv = pl->Dv, lo = fresh ? j0 : atlas_window_lo(t->a, j0, pl->c), R = j0 + n - lo;
    chunk_bufs u = carve(ws, pl);
    load_coefficients(t, lo, j0, n, &u);
    atlas_phi(pl, attn_at(&t->io->k, t->b, t->hk, lo), t->io->k.sn, R, u.xn, u.phk);
    // E = phi(K_R) H0 - V_R: every window row's error at the chunk's start memory
    double flops = 0;
    if (!fresh) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)Dv, (int)F, 1.0f, u.phk, (int)F, H,
                    (int)Dv, 0.0f, u.E, (int)Dv);
        flops += 2.0 * (double)(R * F) * (double)Dv;
    }
    for (int64_t i = 0; i < R; i++) {
        const float *v = attn_at(&t->io->v, t->b, t->hk, lo + i);
        for (int64_t e = 0; e < Dv; e++)
            u.E[i * Dv + e] = (fresh ? 0.0f : u.E[i * Dv + e]) - v[e];
    }
    if (pl->muon)
        return flops + muon_steps(t, lo, j0, n, fresh, H, &u, ws + atlas_chunk_floats(pl), write_o);
    for (int64_t h = t->hk * pl->G; write_o && h < (t->hk + 1) * pl->G; h++)
        flops += chunk_output(t, h, lo, j0, n, fresh, H, &u);
    return flops + advance_state(t, lo, j0, n, fresh, H, &u);
}
