/* Double-precision recurrent reference of sse: the step-by-step recurrence of
 * the recurrence of docs/kernels/sse.md over every token and all 1 + P states of a (batch, KV head),
 *   S^0 <- diag(alpha_t) S^0 + k_t v_t^T
 *   p in K_t: S^p <- diag(alpha_t) S^p + (pi_tp k_t) v_t^T      (others untouched)
 *   o_t = S^0^T (sc q_t) + sum_{p in K_t} S^p^T (sc pi_tp q_t)
 * with pi_t = softmax(e_t), K_t the top-k logits (ties -> lower index), every
 * state 0 at the start of the sequence and of each document. Slow and plain on
 * purpose: the gathered, chunked kernel (sse.c) and its gradients are checked
 * against it. */
#include "sse.h"
#include "sse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* pi = softmax(e) and sel = the k largest logits, ties -> lower index, in double. */
static void route_token(const double *e, int64_t P, int64_t k, double *pi, int64_t *sel)
{
    double m = e[0], s = 0;
    for (int64_t p = 1; p < P; p++)
        m = fmax(m, e[p]);
    for (int64_t p = 0; p < P; p++)
        s += exp(e[p] - m);
    for (int64_t p = 0; p < P; p++)
        pi[p] = exp(e[p] - m) / s;
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t p = 0; p < P; p++) {
            int used = 0;
            for (int64_t i = 0; i < j; i++)
                used |= sel[i] == p;
            if (!used && (best < 0 || e[p] > e[best]))
                best = p;
        }
        sel[j] = best;
    }
}

/* S <- diag(alpha) S + c k v^T   (S: Dk x Dv) */
static void state_step(double *S, const double *alpha, double c, const double *k, const double *v, int64_t Dk,
                       int64_t Dv)
{
    for (int64_t d = 0; d < Dk; d++)
        for (int64_t e = 0; e < Dv; e++)
            S[d * Dv + e] = alpha[d] * S[d * Dv + e] + c * k[d] * v[e];
}

/* o += c S^T q */
static void read_state(double *o, const double *S, double c, const double *q, int64_t Dk, int64_t Dv)
{
    for (int64_t e = 0; e < Dv; e++) {
        double s = 0;
        for (int64_t d = 0; d < Dk; d++)
            s += q[d] * S[d * Dv + e];
        o[e] += c * s;
    }
}

// q is (B,H,N,Dk), k is (B,H_kv,N,Dk), v is (B,H_kv,N,Dv), gate is (B,H_kv,N,Dk), router is (B,H_kv,N,P);
// o is (B,H,N,Dv)
int attn_sse_ref_forward(const attn_args *a, const attn_io64 *io)
{
    int64_t P, k;
    int rc = attn_sse_params(a, &P, &k);
    if (rc)
        return rc;
    if (!io->gate.data || !io->router.data || io->router.D != P)
        return attn_fail(ATTN_EINVAL, "sse reference: io.gate [B,H_kv,N,D] and io.router [B,H_kv,N,P=%lld] "
                         "expected, found one missing or of another width", (long long)P);
    int64_t Dk = a->D, Dv = attn_dv(a), G = a->H / a->H_kv, DkDv = Dk * Dv, seg[GLA_MAX_SEGS + 1];
    int64_t nseg = attn_gla_segments(a, seg), sel[SSE_MAX_PARTITIONS];
    double sc = attn_scale(a), pi[SSE_MAX_PARTITIONS];
    double *S = malloc(sizeof(double) * (size_t)((1 + P) * DkDv)), *alpha = malloc(sizeof(double) * (size_t)Dk);
    if (!S || !alpha) {
        free(S);
        free(alpha);
        return attn_fail(ATTN_ENOMEM, "sse reference: %lld doubles of state expected, allocation failed",
                         (long long)((1 + P) * DkDv));
    }
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t hk = 0; hk < a->H_kv; hk++)
            for (int64_t sg = 0; sg < nseg; sg++) {
                memset(S, 0, sizeof(double) * (size_t)((1 + P) * DkDv));
                for (int64_t t = seg[sg]; t < seg[sg + 1]; t++) {
                    const double *kt = attn_at64(&io->k, b, hk, t), *vt = attn_at64(&io->v, b, hk, t);
                    for (int64_t d = 0; d < Dk; d++)
                        alpha[d] = exp(attn_at64(&io->gate, b, hk, t)[d]);
                    route_token(attn_at64(&io->router, b, hk, t), P, k, pi, sel);
                    state_step(S, alpha, 1.0, kt, vt, Dk, Dv);
                    for (int64_t j = 0; j < k; j++)
                        state_step(S + (1 + sel[j]) * DkDv, alpha, pi[sel[j]], kt, vt, Dk, Dv);
                    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
                        const double *q = attn_at64(&io->q, b, h, t);
                        double *o = attn_at64(&io->o, b, h, t);
                        memset(o, 0, sizeof(double) * (size_t)Dv);
                        read_state(o, S, sc, q, Dk, Dv);
                        for (int64_t j = 0; j < k; j++)
                            read_state(o, S + (1 + sel[j]) * DkDv, sc * pi[sel[j]], q, Dk, Dv);
                    }
                }
            }
    free(S);
    free(alpha);
    return 0;
}
