/* The hmt variant: an lm over segments of L tokens with the memory hierarchy
 * of the Hierarchical Memory Transformer (He et al. 2024; docs/hmt.md). Per
 * segment n: the backbone reads the segment's first j tokens and a learned
 * prompt row; its output there, S_n, queries the last N_m memory embeddings
 * by one-query softmax attention (P_n = softmax(S_n Wq (M Wk)^T / sqrt(C)) M);
 * the backbone then reads the augmented window of hmt_layout.h (k sensory
 * tokens of segment n-1, P_n, the segment, the memory token) and its output
 * at the memory token is m_n, pushed into the FIFO of N_m memories.
 *
 * Four window models share the hmt model's parameters: a streaming pair (B
 * windows: summary, augmented) steps through the segments without gradients
 * and records the memories every segment's recall reads; a batch pair (S*B
 * windows, w = s*B + b) then runs every segment at once on those memories.
 * Truncated backpropagation: the loss of segment n reaches the backbone, the
 * embeddings, the prompt, Wq and Wk, and through P_n the summary pass of
 * segment n; with unroll 2 also, through the newest memory m_{n-1}, the
 * augmented window of segment n-1 that wrote it (and, through its P_{n-1},
 * its summary pass), with everything that window read held constant; older
 * memories are constants. */
#include "hmt_layout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_model sum_s, aug_s, sum_b, aug_b;
    int have_sum;               /* N_m > 0: summaries, recall and memory tokens exist */
    int64_t S, W, Ws, Nm;       /* segments, augmented and summary window rows, memories */
    nn_inject_rows sum_s_rows, aug_s_rows, sum_b_rows, aug_b_rows;
    int64_t *sum_row, *aug_row; /* (S*B) prompt rows of the summary windows; (S*B, 2) P and T rows */
    float *sum_in, *sum_grad;   /* (S*B, C): the prompt in; its gradient out */
    float *aug_in, *aug_grad;   /* (S*B, 2, C): P_n and the prompt in; their gradients out */
    float *mem, *run;           /* (S, B, N_m, C) the memories each segment's recall read (oldest first); (B, N_m, C) */
    int64_t *n_mem;             /* (S) how many */
    float *sq, *q, *keys, *att, *dP, *dq, *dkeys, *dS; /* recall: (SB, C), (SB, C), (SB, N_m, C), (SB, N_m), ... */
    float *dhid;                /* (SB, Ws, C): the summary pass's gradient at its output */
    float *daug;                /* (SB, W, C): unroll 2, the augmented pass's gradient at the memory tokens */
    int32_t *stok, *slen, *atok, *atgt, *alen, *apred; /* batch windows; the streaming ones use their first B */
    nn_batch sb, ab;
} hmt_t;

void nn_hmt_free(nn_model *m)
{
    hmt_t *h = m->hmt;
    if (!h)
        return;
    nn_model_free(&h->sum_s), nn_model_free(&h->aug_s), nn_model_free(&h->sum_b), nn_model_free(&h->aug_b);
    free(h->sum_row), free(h->aug_row), free(h->n_mem);
    attn_free(h->sum_in), attn_free(h->sum_grad), attn_free(h->aug_in), attn_free(h->aug_grad);
    attn_free(h->mem), attn_free(h->run), attn_free(h->sq), attn_free(h->q), attn_free(h->keys), attn_free(h->att);
    attn_free(h->dP), attn_free(h->dq), attn_free(h->dkeys), attn_free(h->dS), attn_free(h->dhid);
    attn_free(h->daug);
    free(h->stok), free(h->slen), free(h->atok), free(h->atgt), free(h->alen), free(h->apred);
    free(h);
    m->hmt = NULL, m->planned = 0;
}

static float *floats(size_t n) { return attn_alloc(sizeof(float) * (n ? n : 1)); }
static int32_t *ints(size_t n) { return malloc(sizeof(int32_t) * (n ? n : 1)); }

static int alloc_all(hmt_t *h, int64_t B, int64_t C)
{
    size_t SB = (size_t)(h->S * B), c = (size_t)C, nm = (size_t)h->Nm;
    h->sum_row = malloc(sizeof(int64_t) * SB), h->aug_row = malloc(sizeof(int64_t) * 2 * SB);
    h->n_mem = malloc(sizeof(int64_t) * (size_t)h->S);
    h->sum_in = floats(SB * c), h->sum_grad = floats(SB * c), h->aug_in = floats(2 * SB * c);
    h->aug_grad = floats(2 * SB * c);
    h->mem = floats((size_t)h->S * (size_t)B * nm * c), h->run = floats((size_t)B * nm * c);
    h->sq = floats(SB * c), h->q = floats(SB * c), h->keys = floats(SB * nm * c), h->att = floats(SB * nm);
    h->dP = floats(SB * c), h->dq = floats(SB * c), h->dkeys = floats(SB * nm * c), h->dS = floats(SB * c);
    h->dhid = floats(SB * (size_t)h->Ws * c), h->daug = floats(SB * (size_t)h->W * c);
    h->stok = ints(SB * (size_t)h->Ws), h->slen = ints(SB), h->atok = ints(SB * (size_t)h->W);
    h->atgt = ints(SB * (size_t)h->W), h->alen = ints(SB), h->apred = ints(SB * (size_t)h->W);
    if (!h->sum_row || !h->aug_row || !h->n_mem || !h->sum_in || !h->sum_grad || !h->aug_in || !h->aug_grad ||
        !h->mem || !h->run || !h->sq || !h->q || !h->keys || !h->att || !h->dP || !h->dq || !h->dkeys || !h->dS ||
        !h->dhid || !h->daug || !h->stok || !h->slen || !h->atok || !h->atgt || !h->alen || !h->apred)
        return attn_fail(ATTN_ENOMEM, "hmt plan: out of memory");
    return 0;
}

static int plan_window(nn_model *w, const nn_model *m, int64_t B, int64_t N, int64_t rows, int threads,
                       const nn_inject_rows *inject)
{
    int rc = nn_model_init_shared(w, m);
    if (!rc)
        rc = nn_model_plan(w, B, N, rows, threads);
    w->inject = inject;
    return rc;
}

int nn_hmt_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads)
{
    const nn_model_cfg *c = &m->cfg;
    if (N > c->max_len || B < 1 || N < 1)
        return attn_fail(ATTN_EINVAL, "hmt plan: expected 1 <= N <= max_len=%lld and B >= 1, found N=%lld B=%lld",
                         (long long)c->max_len, (long long)N, (long long)B);
    hmt_t *h = calloc(1, sizeof *h);
    if (!h)
        return attn_fail(ATTN_ENOMEM, "hmt plan: out of memory");
    m->hmt = h;
    h->S = hmt_segments(c, N), h->W = nn_hmt_window(c), h->Ws = c->hmt_summary + 1, h->Nm = c->hmt_memories;
    h->have_sum = h->Nm > 0;
    int64_t SB = h->S * B, rows = rows_max > 0 && rows_max < B * N ? rows_max : B * N;
    h->sum_s_rows = (nn_inject_rows){.n = 1, .row = h->sum_row, .in = h->sum_in};
    h->aug_s_rows = (nn_inject_rows){.n = 2, .row = h->aug_row, .in = h->aug_in};
    h->sum_b_rows = (nn_inject_rows){.n = 1, .row = h->sum_row, .in = h->sum_in, .grad = h->sum_grad};
    h->aug_b_rows = (nn_inject_rows){.n = 2, .row = h->aug_row, .in = h->aug_in, .grad = h->aug_grad};
    int rc = alloc_all(h, B, c->d_model);
    h->sum_s_rows.row = h->sum_b_rows.row = h->sum_row, h->aug_s_rows.row = h->aug_b_rows.row = h->aug_row;
    h->sum_s_rows.in = h->sum_b_rows.in = h->sum_in, h->aug_s_rows.in = h->aug_b_rows.in = h->aug_in;
    h->sum_b_rows.grad = h->sum_grad, h->aug_b_rows.grad = h->aug_grad;
    if (!rc && h->have_sum && !(rc = plan_window(&h->sum_s, m, B, h->Ws, 1, threads, &h->sum_s_rows)) &&
        !(rc = plan_window(&h->aug_s, m, B, h->W, 1, threads, &h->aug_s_rows)))
        rc = plan_window(&h->sum_b, m, SB, h->Ws, 1, threads, &h->sum_b_rows);
    if (!rc)
        rc = plan_window(&h->aug_b, m, SB, h->W, rows, threads, &h->aug_b_rows);
    if (rc) {
        nn_hmt_free(m);
        return rc;
    }
    h->aug_b.keep_acts = c->hmt_unroll == 2; /* its second backward, from the memory tokens */
    m->B = B, m->N = N, m->threads = threads < 1 ? 1 : threads, m->rows_max = rows, m->planned = 1;
    return 0;
}

/* ---------------------------------------------------------------- recall */

/* P = softmax_r(q . K_r / sqrt(C)) M_r over the n memories M (n, C) of one
 * window, with q = S Wq^T and K = M Wk^T computed by the caller; att (n). */
static void recall_one(const float *q, const float *K, const float *M, int64_t n, int64_t C, float *att, float *P)
{
    double mx = -INFINITY, z = 0, sc = 1.0 / sqrt((double)C);
    for (int64_t r = 0; r < n; r++) {
        double d = 0;
        for (int64_t k = 0; k < C; k++)
            d += (double)q[k] * K[r * C + k];
        att[r] = (float)(d * sc);
        mx = fmax(mx, att[r]);
    }
    for (int64_t r = 0; r < n; r++)
        z += (att[r] = (float)exp(att[r] - mx));
    memset(P, 0, sizeof(float) * (size_t)C);
    for (int64_t r = 0; r < n; r++) {
        att[r] = (float)(att[r] / z);
        for (int64_t k = 0; k < C; k++)
            P[k] += att[r] * M[r * C + k];
    }
}

/* Backward of recall_one with the memories held constant: dq and dK from dP. */
static void recall_one_backward(const float *q, const float *K, const float *M, const float *att, int64_t n, int64_t C,
                                const float *dP, float *dq, float *dK)
{
    double sc = 1.0 / sqrt((double)C), dot = 0;
    double da[n > 0 ? n : 1];
    for (int64_t r = 0; r < n; r++) {
        da[r] = 0;
        for (int64_t k = 0; k < C; k++)
            da[r] += (double)dP[k] * M[r * C + k];
        dot += att[r] * da[r];
    }
    memset(dq, 0, sizeof(float) * (size_t)C);
    for (int64_t r = 0; r < n; r++) {
        double ds = att[r] * (da[r] - dot) * sc; /* d score before the 1/sqrt(C) */
        for (int64_t k = 0; k < C; k++) {
            dq[k] += (float)(ds * K[r * C + k]);
            dK[r * C + k] = (float)(ds * q[k]);
        }
    }
}

/* The batch pass's recall: summaries in h->sq, window w's memories in
 * h->mem; P_n into the P slot of aug_in. */
static void recall(nn_model *m, hmt_t *h, int64_t SB)
{
    int64_t B = m->B, C = m->cfg.d_model, Nm = h->Nm;
    nn_dense_forward(&m->hmt_q, h->sq, h->q, SB, m->threads);
    nn_dense_forward(&m->hmt_k, h->mem, h->keys, SB * Nm, m->threads);
    for (int64_t w = 0; w < SB; w++) {
        int64_t n = h->n_mem[w / B];
        if (n > 0)
            recall_one(h->q + w * C, h->keys + w * Nm * C, h->mem + w * Nm * C, n, C, h->att + w * Nm,
                       h->aug_in + w * 2 * C);
    }
}

/* ---------------------------------------------------------------- windows */

/* The windows of segment s for sequences [0, B) of b, into slots
 * [w0, w0 + B) of the window arrays (w0 = s*B in the batch pass, 0 in the
 * streaming one); the prompt into its slots. */
static void fill_segment(nn_model *m, hmt_t *h, const nn_batch *b, int64_t s, int64_t w0)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t B = m->B, N = m->N, C = c->d_model, L = c->hmt_segment;
    hmt_seg g = hmt_layout(c, N, s);
    for (int64_t i = 0; i < B; i++) {
        int64_t w = w0 + i;
        const int32_t *seq = b->tokens + i * N, *tgt = b->targets ? b->targets + i * N : NULL;
        hmt_fill_window(&g, s, L, seq, tgt, h->atok + w * h->W, h->atgt + w * h->W, h->W);
        h->alen[w] = (int32_t)g.rows;
        h->aug_row[2 * w] = g.p_row, h->aug_row[2 * w + 1] = g.t_row;
        memcpy(h->aug_in + (2 * w + 1) * C, m->hmt_prompt, sizeof(float) * (size_t)C);
        if (!h->have_sum)
            continue;
        hmt_fill_summary(&g, s, L, seq, h->stok + w * h->Ws, h->Ws);
        h->slen[w] = (int32_t)(g.jj + 1), h->sum_row[w] = g.jj;
        memcpy(h->sum_in + w * C, m->hmt_prompt, sizeof(float) * (size_t)C);
    }
}

/* Rows (nw windows from w0) of a window model's final-norm output at the
 * per-window row rows[w*stride] into dst (nw, C). */
static void gather_rows(const float *xf, int64_t Wn, int64_t C, const int64_t *rows, int64_t stride, int64_t w0,
                        int64_t nw, float *dst)
{
    for (int64_t w = w0; w < w0 + nw; w++)
        if (rows[w * stride] >= 0)
            memcpy(dst + (w - w0) * C, xf + ((w - w0) * Wn + rows[w * stride]) * C, sizeof(float) * (size_t)C);
}

/* The streaming pass: segment after segment on B windows, without
 * gradients, recording the memories every segment's recall reads. */
static int stream(nn_model *m, hmt_t *h, const nn_batch *b)
{
    int64_t B = m->B, C = m->cfg.d_model, Nm = h->Nm;
    size_t block = (size_t)(B * Nm * C);
    int64_t count = 0;
    int rc = 0;
    float *mnew = h->dS; /* scratch (B, C) until the batch pass */
    for (int64_t s = 0; !rc && s < h->S; s++) {
        h->n_mem[s] = count;
        memcpy(h->mem + (size_t)s * block, h->run, sizeof(float) * block);
        if (!h->have_sum || s + 1 == h->S)
            continue; /* no memories, or none read after the last segment */
        fill_segment(m, h, b, s, 0);
        const float *xf;
        nn_batch sb = {.B = B, .tokens = h->stok, .lengths = h->slen};
        if (count > 0) {
            if ((rc = nn_model_encode(&h->sum_s, &sb, &xf)) != 0)
                break;
            gather_rows(xf, h->Ws, C, h->sum_row, 1, 0, B, h->sq);
            nn_dense_forward(&m->hmt_q, h->sq, h->q, B, m->threads);
            nn_dense_forward(&m->hmt_k, h->run, h->keys, B * Nm, m->threads);
            for (int64_t i = 0; i < B; i++)
                recall_one(h->q + i * C, h->keys + i * Nm * C, h->run + i * Nm * C, count, C, h->att + i * Nm,
                           h->aug_in + i * 2 * C);
        }
        nn_batch ab = {.B = B, .tokens = h->atok, .lengths = h->alen};
        if ((rc = nn_model_encode(&h->aug_s, &ab, &xf)) != 0)
            break;
        gather_rows(xf, h->W, C, h->aug_row + 1, 2, 0, B, mnew);
        for (int64_t i = 0; i < B; i++) { /* FIFO, oldest first: drop the oldest when full */
            float *M = h->run + i * Nm * C;
            if (count == Nm)
                memmove(M, M + C, sizeof(float) * (size_t)((Nm - 1) * C));
            memcpy(M + (count == Nm ? Nm - 1 : count) * C, mnew + i * C, sizeof(float) * (size_t)C);
        }
        count = count < Nm ? count + 1 : Nm;
    }
    return rc;
}

/* Both passes up to the batch pass's augmented windows, ready in h->ab. */
static int prepare(nn_model *m, const nn_batch *b, int training, uint64_t step)
{
    hmt_t *h = m->hmt;
    int64_t B = m->B, C = m->cfg.d_model, SB = h ? h->S * B : 0;
    if (!h || b->B != B)
        return attn_fail(ATTN_EINVAL, "hmt forward: expected a planned model and a batch of B=%lld, found %lld",
                         (long long)B, (long long)b->B);
    memset(h->run, 0, sizeof(float) * (size_t)(B * h->Nm * C));
    int rc = stream(m, h, b);
    for (int64_t s = 0; !rc && s < h->S; s++)
        fill_segment(m, h, b, s, s * B);
    if (!rc && h->have_sum) {
        const float *xf;
        h->sb = (nn_batch){.B = SB, .tokens = h->stok, .lengths = h->slen};
        if (!(rc = nn_model_hidden_forward(&h->sum_b, &h->sb, training, step, &xf))) {
            gather_rows(xf, h->Ws, C, h->sum_row, 1, 0, SB, h->sq);
            recall(m, h, SB);
        }
    }
    h->ab = (nn_batch){.B = SB, .tokens = h->atok, .targets = h->atgt, .lengths = h->alen};
    return rc;
}

/* Window row of sequence b's position n in the batch pass. */
static int64_t window_row(const nn_model *m, const hmt_t *h, int64_t b, int64_t n)
{
    int64_t s = n / m->cfg.hmt_segment;
    hmt_seg g = hmt_layout(&m->cfg, m->N, s);
    return (s * m->B + b) * h->W + hmt_token_row(&g, n % m->cfg.hmt_segment);
}

int nn_hmt_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                   int64_t *scored, int32_t *pred)
{
    hmt_t *h = m->hmt;
    int rc = prepare(m, b, training, step);
    if (!rc)
        rc = nn_model_forward(&h->aug_b, &h->ab, training, step, loss, correct, scored, pred ? h->apred : NULL);
    for (int64_t i = 0; !rc && pred && i < m->B; i++)
        for (int64_t n = 0; n < m->N; n++)
            pred[i * m->N + n] = h->apred[window_row(m, h, i, n)];
    return rc;
}

/* Unroll 2: the gradient at the newest memory m_{n-1} that window w
 * (segment n) read, through the recall's values and keys (dP: its d P_n),
 * goes to the memory token of window w - B (segment n-1) in h->daug. */
static void newest_memory_grad(nn_model *m, hmt_t *h, int64_t SB)
{
    int64_t B = m->B, C = m->cfg.d_model, Nm = h->Nm;
    memset(h->daug, 0, sizeof(float) * (size_t)(SB * h->W * C));
    for (int64_t w = B; w < SB; w++) {
        int64_t n = h->n_mem[w / B], r = n - 1, wp = w - B;
        const float *dP = h->dP + w * C, *a = h->att + w * Nm;
        if (n < 1)
            continue;
        recall_one_backward(h->q + w * C, h->keys + w * Nm * C, h->mem + w * Nm * C, a, n, C, dP, h->dq + w * C,
                            h->dkeys + w * Nm * C);
        float *g = h->daug + (wp * h->W + h->aug_row[2 * wp + 1]) * C;
        const float *dK = h->dkeys + (w * Nm + r) * C;
        for (int64_t i = 0; i < C; i++) { /* values: a_r dP; keys: dK_r Wk (Wk is (out, in)) */
            double v = (double)a[r] * dP[i];
            for (int64_t o = 0; o < C; o++)
                v += (double)dK[o] * m->hmt_k.w[o * C + i];
            g[i] = (float)v;
        }
    }
}

/* d P_n (into h->dP, added) and the prompt's gradient from the augmented
 * windows' injected rows of the last backward. */
static void take_row_grads(nn_model *m, hmt_t *h, int64_t SB)
{
    int64_t C = m->cfg.d_model;
    for (int64_t w = 0; w < SB; w++)
        for (int64_t k = 0; k < C; k++) {
            h->dP[w * C + k] += h->aug_grad[2 * w * C + k];
            m->hmt_dprompt[k] += h->aug_grad[(2 * w + 1) * C + k]; /* memory token and prompt: one embedding */
        }
}

/* The augmented windows' backward gives d P_n (and d of the prompt rows);
 * with unroll 2, the gradient at each newest memory then runs back through
 * the augmented window that wrote it (a second backward over the same
 * forward, from its memory token; what that window read stays constant);
 * the recall's backward gives d S_n, Wq's and Wk's gradients; the summary
 * windows' backward then runs from d S_n. */
int nn_hmt_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale)
{
    hmt_t *h = m->hmt;
    (void)b; /* the windows of the last forward hold it */
    int64_t B = m->B, C = m->cfg.d_model, Nm = h->Nm, SB = h->S * B;
    int rc = nn_model_backward(&h->aug_b, &h->ab, step, scale);
    memset(h->dP, 0, sizeof(float) * (size_t)(SB * C));
    if (!rc)
        take_row_grads(m, h, SB);
    if (rc || !h->have_sum)
        return rc;
    if (m->cfg.hmt_unroll == 2 && h->S > 1) {
        newest_memory_grad(m, h, SB);
        if ((rc = nn_model_backward_hidden(&h->aug_b, h->daug, step, 0)) != 0)
            return rc;
        take_row_grads(m, h, SB);
    }
    memset(h->dS, 0, sizeof(float) * (size_t)(SB * C));
    memset(h->dkeys, 0, sizeof(float) * (size_t)(SB * Nm * C));
    memset(h->dq, 0, sizeof(float) * (size_t)(SB * C));
    for (int64_t w = 0; w < SB; w++) {
        int64_t n = h->n_mem[w / B];
        if (n > 0)
            recall_one_backward(h->q + w * C, h->keys + w * Nm * C, h->mem + w * Nm * C, h->att + w * Nm, n, C,
                                h->dP + w * C, h->dq + w * C, h->dkeys + w * Nm * C);
    }
    nn_dense_backward(&m->hmt_k, h->mem, h->dkeys, NULL, SB * Nm, m->threads);
    nn_dense_backward(&m->hmt_q, h->sq, h->dq, h->dS, SB, m->threads);
    memset(h->dhid, 0, sizeof(float) * (size_t)(SB * h->Ws * C));
    for (int64_t w = 0; w < SB; w++)
        memcpy(h->dhid + (w * h->Ws + h->sum_row[w]) * C, h->dS + w * C, sizeof(float) * (size_t)C);
    if ((rc = nn_model_backward_hidden(&h->sum_b, h->dhid, step, 1)) != 0)
        return rc;
    for (int64_t w = 0; w < SB; w++)
        for (int64_t k = 0; k < C; k++)
            m->hmt_dprompt[k] += h->sum_grad[w * C + k];
    return 0;
}

int nn_hmt_hidden(nn_model *m, const nn_batch *b, float *hidden)
{
    hmt_t *h = m->hmt;
    int64_t C = m->cfg.d_model;
    const float *xf;
    int rc = prepare(m, b, 0, 0);
    if (!rc)
        rc = nn_model_encode(&h->aug_b, &h->ab, &xf);
    for (int64_t i = 0; !rc && i < m->B; i++)
        for (int64_t n = 0; n < m->N; n++)
            memcpy(hidden + (i * m->N + n) * C, xf + window_row(m, h, i, n) * C, sizeof(float) * (size_t)C);
    return rc;
}

int nn_hmt_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    const hmt_t *h = m->hmt;
    return nn_model_attn_inputs(&h->aug_b, app, q, k, v);
}
