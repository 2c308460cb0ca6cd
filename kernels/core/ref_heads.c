/* Forward and fidelity view of a head-by-head double reference (ref_heads.h). */
#include "kernels/core/ref_heads.h"

#include "common/attn_error.h"

#include <stdlib.h>
#include <string.h>

int attn_ref_heads_forward(const attn_ref_heads *r, void *head, const attn_args *a, const attn_io64 *io)
{
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int rc = r->open(head, a, io, b, h);
            if (rc)
                return rc;
            for (int64_t i = 0; i < a->Nq; i++) {
                double lse = r->row(head, i, attn_at64(&io->o, b, h, i), NULL, NULL);
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
            r->close(head);
        }
    return 0;
}

int attn_ref_heads_view(const attn_ref_heads *r, void *head, const attn_args *a, const attn_io64 *io, int64_t b,
                        int64_t h, const int64_t *rows, int64_t n_rows, double *P, unsigned char *sel)
{
    int rc = r->open(head, a, io, b, h);
    if (rc)
        return rc;
    double *o = malloc(sizeof(double) * (size_t)attn_dv(a)); /* the row's output, not part of the view */
    if (!o) {
        r->close(head);
        return attn_fail(ATTN_ENOMEM, "%s view: out of memory", r->name);
    }
    for (int64_t k = 0; k < n_rows; k++) {
        memset(P + k * a->Nk, 0, sizeof(double) * (size_t)a->Nk);
        memset(sel + k * a->Nk, 0, (size_t)a->Nk);
        r->row(head, rows[k], o, P + k * a->Nk, sel + k * a->Nk);
    }
    free(o);
    r->close(head);
    return ATTN_VIEW_ROWS | ATTN_VIEW_KEYS;
}
