#include "softmax_rows.h"

#include "vexp.h"

#include <math.h>
#include <string.h>

void attn_mask_score_row(const attn_args *a, int64_t b, int64_t h, int64_t i, float *s)
{
    for (int64_t j = 0; j < a->Nk; j++)
        if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j))
            s[j] = -INFINITY;
}

float attn_softmax_row(float *s, int64_t n)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        m = s[j] > m ? s[j] : m;
    if (m == -INFINITY) { /* every key masked: O = 0, lse = -inf, for every kernel */
        for (int64_t j = 0; j < n; j++)
            s[j] = 0;
        return -INFINITY;
    }
    float l = 0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - m);
        l += s[j];
    }
    float inv = 1.0f / l;
    for (int64_t j = 0; j < n; j++)
        s[j] *= inv;
    return m + logf(l);
}

float attn_softmax_row_vexp(float *s, int64_t n)
{
    float m = -INFINITY, l = 0;
    for (int64_t j = 0; j < n; j++)
        m = s[j] > m ? s[j] : m;
    if (m == -INFINITY) {
        memset(s, 0, sizeof(float) * (size_t)n);
        return -INFINITY;
    }
    for (int64_t j = 0; j < n; j++)
        s[j] -= m;
    attn_vexp(s, s, n);
    for (int64_t j = 0; j < n; j++)
        l += s[j];
    float inv = 1.0f / l;
    for (int64_t j = 0; j < n; j++)
        s[j] *= inv;
    return m + logf(l);
}

void attn_probs_from_lse(float *s, int64_t n, float lse)
{
    if (lse == -INFINITY) {
        for (int64_t j = 0; j < n; j++)
            s[j] = 0;
        return;
    }
    for (int64_t j = 0; j < n; j++)
        s[j] = expf(s[j] - lse);
}

void attn_softmax_rows_bwd(const float *P, int64_t ldp, float *G, int64_t ldg, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *p = P + r * ldp;
        float *g = G + r * ldg;
        double dot = 0;
        for (int64_t j = 0; j < cols; j++)
            dot += (double)p[j] * g[j];
        for (int64_t j = 0; j < cols; j++)
            g[j] = p[j] * (g[j] - (float)dot);
    }
}

float attn_dot(const float *x, const float *y, int64_t n)
{
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < n; d++)
        acc += x[d] * y[d];
    return acc;
}

const opt_def attn_score_matrix_params[] = {
    {.name = "max_ws_mib", .type = OPT_INT, .def = 1024, .lo = 1, .hi = 1 << 30,
     .help = "cap on the N^2 score-matrix workspace"},
    {0},
};

int attn_score_matrix_init(attn_ctx *ctx, const attn_args *a, int matrices)
{
    int rc = attn_params_check(a, ctx->kernel->name, attn_score_matrix_params);
    if (rc)
        return rc;
    int64_t cap_mib = attn_param_int(a, attn_score_matrix_params, "max_ws_mib", &rc);
    if (rc)
        return rc;
    double bytes = (double)a->threads * matrices * (double)a->Nq * (double)a->Nk * sizeof(float);
    if (bytes > (double)cap_mib * (1 << 20))
        return attn_fail(ATTN_EUNSUPPORTED,
                         "kernel '%s': score matrices need %.0f MiB > max_ws_mib=%lld "
                         "(memory grows as N^2; raise with --param max_ws_mib=...)",
                         ctx->kernel->name, bytes / (1 << 20), (long long)cap_mib);
    ctx->workspace_bytes = (size_t)bytes;
    return 0;
}

float *attn_score_matrix(const attn_ctx *ctx, int thread, int i, int matrices)
{
    size_t per = (size_t)(ctx->args.Nq * ctx->args.Nk);
    return (float *)ctx->workspace + ((size_t)thread * (size_t)matrices + (size_t)i) * per;
}
