/* Double-precision references of `performer` (docs/kernels/performer.md):
 * the recurrent form of the linear-attention core with the same draw and
 * the double twins of the feature maps, and the attention rows it forms. */
#include "performer_internal.h"

#include <cblas.h>
#include <stdlib.h>

int pf_ref_forward(const attn_args *a, const attn_io64 *io)
{
    pf_setup s;
    int rc = pf_setup_make(&s, a);
    if (rc)
        return rc;
    rc = lin_ref_forward64(a, &s.cfg, io);
    pf_setup_free(&s);
    return rc;
}

/* Rows (n x m) of the map applied to rows idx[0..n-1] (or 0..n-1 when idx is NULL) of t at (b, h). */
static void map_rows(const lin_fmap *mp, const attn_tensor_f64 *t, int64_t b, int64_t h, const int64_t *idx,
                     int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        mp->fwd64(mp, attn_at64(t, b, h, idx ? idx[i] : i), out + i * mp->F);
}

/* P_rj = <phi(q_i), phi(k_j)> (i = rows[r]) over the allowed keys, normalised
 * per row: positive features make every row a distribution, and O = P V (up
 * to the 1e-30 guard). Padded query rows and rows without a key are zero. */
static void fill_rows(const attn_args *a, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                      const double *fq, const double *fk, int64_t m, double *P)
{
    int64_t Nk = a->Nk;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_rows, (int)Nk, (int)m, 1.0, fq, (int)m, fk, (int)m,
                0.0, P, (int)Nk);
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t i = rows[r];
        double *row = P + r * Nk, sum = 0;
        for (int64_t j = 0; j < Nk; j++) {
            int keep = i < attn_q_len(a, b) && j < attn_kv_len(a, b) &&
                       attn_mask_allowed(&a->mask, b, h, attn_q_off_of(a, b) + i, a->k_off + j);
            row[j] = keep ? row[j] : 0;
            sum += row[j];
        }
        for (int64_t j = 0; j < Nk; j++)
            row[j] = sum > 0 ? row[j] / sum : 0;
    }
}

int pf_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    (void)sel; /* no content selection: every key gets a weight */
    pf_setup s;
    int rc = pf_setup_make(&s, a);
    if (rc)
        return rc;
    int64_t m = pf_feature_count(&s.p, a->D);
    double *fq = malloc(sizeof(double) * (size_t)((n_rows + a->Nk) * m));
    if (!fq)
        rc = attn_fail(ATTN_ENOMEM, "performer view: out of memory for %lld feature rows",
                       (long long)(n_rows + a->Nk));
    else {
        double *fk = fq + n_rows * m;
        map_rows(lin_qmap(&s.cfg), &io->q, b, h, rows, n_rows, fq);
        map_rows(&s.cfg.fm, &io->k, b, h / (a->H / a->H_kv), NULL, a->Nk, fk);
        fill_rows(a, b, h, rows, n_rows, fq, fk, m, P);
    }
    free(fq);
    pf_setup_free(&s);
    return rc ? rc : ATTN_VIEW_ROWS;
}
