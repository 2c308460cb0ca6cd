/* Double-precision recurrent references of retnet / lightning / gla: the
 * step-by-step recurrence of docs/kernels/gla.md, one token at a time,
 *   S_t = diag(alpha_t) S_{t-1} + k_t v_t^T,   o_t = S_t^T (sc q_t),
 * S = 0 at the start of the sequence and of every document. Slow and plain on
 * purpose: the chunked kernels (gla.c) and their gradients are checked against it. */
#include "gla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// q is (B,H,N,Dk), k is (B,H_kv,N,Dk), v is (B,H_kv,N,Dv), gate (gla) is (B,H_kv,N,Dk); o is (B,H,N,Dv)
static int ref_forward(gla_preset p, const attn_args *a, const attn_io64 *io)
{
    int64_t Dk = a->D, Dv = attn_dv(a), G = a->H / a->H_kv, seg[GLA_MAX_SEGS + 1];
    int64_t nseg = attn_gla_segments(a, seg);
    double sc = attn_scale(a);
    double *S = malloc(sizeof(double) * (size_t)(Dk * Dv)), *alpha = malloc(sizeof(double) * (size_t)Dk);
    int rc = 0;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t hk = 0; hk < a->H_kv && !rc; hk++) {
            double w = 0;
            if (p != GLA_GLA && (rc = attn_gla_log_decay(p, a, hk, &w)) != 0)
                break;
            for (int64_t sg = 0; sg < nseg; sg++) {
                memset(S, 0, sizeof(double) * (size_t)(Dk * Dv));
                for (int64_t t = seg[sg]; t < seg[sg + 1]; t++) {
                    const double *k = attn_at64(&io->k, b, hk, t), *v = attn_at64(&io->v, b, hk, t);
                    for (int64_t d = 0; d < Dk; d++)
                        alpha[d] = exp(p == GLA_GLA ? attn_at64(&io->gate, b, hk, t)[d] : w);
                    for (int64_t d = 0; d < Dk; d++)
                        for (int64_t e = 0; e < Dv; e++)
                            S[d * Dv + e] = alpha[d] * S[d * Dv + e] + k[d] * v[e];
                    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
                        const double *q = attn_at64(&io->q, b, h, t);
                        double *o = attn_at64(&io->o, b, h, t);
                        for (int64_t e = 0; e < Dv; e++) {
                            double s = 0;
                            for (int64_t d = 0; d < Dk; d++)
                                s += q[d] * S[d * Dv + e];
                            o[e] = sc * s;
                        }
                    }
                }
            }
        }
    free(S);
    free(alpha);
    return rc;
}

int attn_gla_ref_retnet(const attn_args *a, const attn_io64 *io) { return ref_forward(GLA_RETNET, a, io); }
int attn_gla_ref_gla(const attn_args *a, const attn_io64 *io) { return ref_forward(GLA_GLA, a, io); }
int attn_gla_ref_lightning(const attn_args *a, const attn_io64 *io) { return ref_forward(GLA_LIGHTNING, a, io); }
