/* The logsumexp merge of a group's partials, shared by `decode` and `lean`
 * (decode_internal.h). */
#include "decode_internal.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <string.h>

void attn_dec_merge(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t grp,
                    const float *part0, int64_t np)
{
    int64_t b, hk, qt;
    dec_group(a, pl, grp, &b, &hk, &qt);
    int64_t D = a->D, G = pl->G, i0 = qt * pl->br, nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    size_t ps = pl->part_floats;
    const float *lse0 = part0 + G * pl->br * D;
    for (int64_t r = 0; r < G * nb; r++) {
        int64_t h = hk * G + r / nb, i = i0 + r % nb;
        float *o = attn_at(&io->o, b, h, i), *lse = &io->lse[(b * a->H + h) * a->Nq + i];
        float M = -INFINITY, L = 0;
        for (int64_t p = 0; p < np; p++)
            M = fmaxf(M, lse0[p * ps + r]);
        if (M == -INFINITY) { /* no partial saw a key: a fully masked row */
            memset(o, 0, sizeof(float) * (size_t)D);
            *lse = -INFINITY;
            continue;
        }
        for (int64_t p = 0; p < np; p++)
            L += attn_expf(lse0[p * ps + r] - M);
        /* the first term is assigned, not added to 0, so one partial is copied bitwise */
        for (int64_t p = 0; p < np; p++) {
            float c = attn_expf(lse0[p * ps + r] - M) / L;
            const float *op = part0 + p * ps + r * D;
            if (p == 0)
                for (int64_t d = 0; d < D; d++)
                    o[d] = c * op[d];
            else
                for (int64_t d = 0; d < D; d++)
                    o[d] += c * op[d];
        }
        *lse = M + logf(L);
    }
}
