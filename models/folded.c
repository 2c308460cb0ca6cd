/* The folded variant: an lm run over segments of C tokens in which every
 * block application keeps a buffer of m states from one segment to the next
 * (folded context, docs/folded.md). For segment s,
 * application a runs on the window [M_a ; H_a,s] with causal attention (the
 * buffer rows are queries too, so old states are evolved again), and M_a
 * becomes the last m rows of that application's output on the window.
 *
 * Two window models share the folded model's parameters. The streaming model
 * (B windows) steps through the segments and records every buffer; the batch
 * model (S*B windows, w = s*B + b) then runs all segments at once with those
 * buffers written into its window rows before every application. Gradients
 * stop at the buffers (truncated backpropagation, one segment): the buffer
 * rows are constants of the batch model, so one forward and one backward over
 * all segments give the gradient, at the price of a second, gradient-free
 * forward (the streaming pass). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_model stream, batch;
    int64_t S, W, A;
    nn_fold_rows stream_rows, batch_rows;
    int64_t *stream_valid, *batch_valid;
    float *bufs, *next;         /* (A, S*B, m, C) every window's buffer; (A, B, m, C) the step's output */
    nn_fold_state st;           /* the driver's own streaming state */
    int32_t *seg_tok, *seg_len; /* the streaming window batch: (B, W), (B) */
    int32_t *wtok, *wtgt, *wlen, *wpred; /* the batch model's windows: (S*B, W) and (S*B) */
    nn_batch wb;
} folded_t;

void nn_folded_free(nn_model *m)
{
    folded_t *f = m->folded;
    if (!f)
        return;
    nn_model_free(&f->stream);
    nn_model_free(&f->batch);
    free(f->stream_valid), free(f->batch_valid);
    attn_free(f->bufs), attn_free(f->next), attn_free(f->st.rows);
    free(f->seg_tok), free(f->seg_len), free(f->wtok), free(f->wtgt), free(f->wlen), free(f->wpred);
    free(f);
    m->folded = NULL, m->planned = 0;
}

size_t nn_folded_state_floats(const nn_model *m, int64_t B)
{
    const nn_model_cfg *c = &m->cfg;
    return (size_t)(c->layers * c->loops * B * c->fold_buffer * c->d_model);
}

static float *floats(size_t n) { return attn_alloc(sizeof(float) * (n ? n : 1)); }

static int alloc_all(folded_t *f, const nn_model *m, int64_t B)
{
    size_t SB = (size_t)(f->S * B), W = (size_t)f->W, state = nn_folded_state_floats(m, B);
    f->stream_valid = malloc(sizeof(int64_t) * (size_t)B);
    f->batch_valid = malloc(sizeof(int64_t) * SB);
    f->bufs = floats(state * (size_t)f->S), f->next = floats(state), f->st.rows = floats(state);
    f->seg_tok = malloc(sizeof(int32_t) * (size_t)B * W), f->seg_len = malloc(sizeof(int32_t) * (size_t)B);
    f->wtok = malloc(sizeof(int32_t) * SB * W), f->wtgt = malloc(sizeof(int32_t) * SB * W);
    f->wlen = malloc(sizeof(int32_t) * SB), f->wpred = malloc(sizeof(int32_t) * SB * W);
    if (!f->stream_valid || !f->batch_valid || !f->bufs || !f->next || !f->st.rows || !f->seg_tok || !f->seg_len ||
        !f->wtok || !f->wtgt || !f->wlen || !f->wpred)
        return attn_fail(ATTN_ENOMEM, "folded plan: out of memory");
    return 0;
}

int nn_folded_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads)
{
    const nn_model_cfg *c = &m->cfg;
    if (N > c->max_len || B < 1 || N < 1)
        return attn_fail(ATTN_EINVAL, "folded plan: expected 1 <= N <= max_len=%lld and B >= 1, found N=%lld B=%lld",
                         (long long)c->max_len, (long long)N, (long long)B);
    folded_t *f = calloc(1, sizeof *f);
    if (!f)
        return attn_fail(ATTN_ENOMEM, "folded plan: out of memory");
    m->folded = f;
    f->S = (N + c->fold_segment - 1) / c->fold_segment, f->W = nn_fold_window(c), f->A = c->layers * c->loops;
    int64_t rows = rows_max > 0 && rows_max < B * N ? rows_max : B * N;
    int rc = alloc_all(f, m, B);
    if (!rc && !(rc = nn_model_init_shared(&f->stream, m)))
        rc = nn_model_plan(&f->stream, B, f->W, 1, threads);
    if (!rc && !(rc = nn_model_init_shared(&f->batch, m)))
        rc = nn_model_plan(&f->batch, f->S * B, f->W, rows, threads);
    if (rc) {
        nn_folded_free(m);
        return rc;
    }
    f->stream_rows = (nn_fold_rows){.m = c->fold_buffer, .valid = f->stream_valid, .in = f->st.rows, .out = f->next};
    f->batch_rows = (nn_fold_rows){.m = c->fold_buffer, .valid = f->batch_valid, .in = f->bufs};
    f->stream.fold = &f->stream_rows, f->batch.fold = &f->batch_rows;
    m->B = B, m->N = N, m->threads = threads < 1 ? 1 : threads, m->rows_max = rows, m->planned = 1;
    return 0;
}

/* One window per sequence: `valid` buffer rows (token 0: overwritten by the
 * buffer before the first block), then the segment's c tokens, then padding. */
static void window_tokens(int32_t *dst, int64_t W, int64_t valid, const int32_t *src, int64_t c)
{
    memset(dst, 0, sizeof(int32_t) * (size_t)W);
    memcpy(dst + valid, src, sizeof(int32_t) * (size_t)c);
}

/* The streaming step on tokens (B, c) whose rows are `stride` apart; state in
 * and out through st (st->rows may be the driver's own). */
static int step_strided(nn_model *m, const int32_t *tok, int64_t stride, int64_t c, nn_fold_state *st, float *hidden)
{
    folded_t *f = m->folded;
    const nn_model_cfg *cf = &m->cfg;
    int64_t B = m->B, C = cf->d_model, v = st->valid;
    if (!f || c < 1 || c > cf->fold_segment || v < 0 || v > cf->fold_buffer)
        return attn_fail(ATTN_EINVAL, "folded step: expected a planned folded model, 1 <= c <= %lld and a state of at "
                         "most %lld rows, found c=%lld, %lld rows", (long long)cf->fold_segment,
                         (long long)cf->fold_buffer, (long long)c, (long long)v);
    int64_t W = f->W;
    for (int64_t b = 0; b < B; b++) {
        window_tokens(f->seg_tok + b * W, W, v, tok + b * stride, c);
        f->seg_len[b] = (int32_t)(v + c), f->stream_valid[b] = v;
    }
    f->stream_rows.in = st->rows;
    nn_batch wb = {.B = B, .tokens = f->seg_tok, .lengths = f->seg_len};
    const float *xf;
    int rc = nn_model_encode(&f->stream, &wb, &xf);
    if (rc)
        return rc;
    for (int64_t b = 0; hidden && b < B; b++)
        memcpy(hidden + b * c * C, xf + (b * W + v) * C, sizeof(float) * (size_t)(c * C));
    memcpy(st->rows, f->next, sizeof(float) * nn_folded_state_floats(m, B));
    st->valid = v + c < cf->fold_buffer ? v + c : cf->fold_buffer;
    return 0;
}

int nn_folded_step(nn_model *m, const int32_t *tokens, int64_t c, nn_fold_state *st, float *hidden)
{
    return step_strided(m, tokens, c, c, st, hidden);
}

/* The streaming pass records every segment's buffers, then the batch model's
 * windows are filled from b. */
static int prepare(nn_model *m, const nn_batch *b)
{
    folded_t *f = m->folded;
    const nn_model_cfg *c = &m->cfg;
    int64_t B = m->B, N = m->N, Cs = c->fold_segment;
    if (!f || b->B != B)
        return attn_fail(ATTN_EINVAL, "folded forward: expected a planned model and a batch of B=%lld, found %lld",
                         (long long)B, (long long)b->B);
    int64_t W = f->W, SB = f->S * B;
    size_t block = (size_t)(B * c->fold_buffer * c->d_model); /* one application's buffers of one segment */
    memset(f->st.rows, 0, sizeof(float) * nn_folded_state_floats(m, B));
    f->st.valid = 0;
    int rc = 0;
    for (int64_t s = 0; !rc && s < f->S; s++) {
        int64_t len = N - s * Cs < Cs ? N - s * Cs : Cs;
        for (int64_t a = 0; a < f->A; a++)
            memcpy(f->bufs + ((size_t)(a * f->S + s)) * block, f->st.rows + (size_t)a * block, sizeof(float) * block);
        for (int64_t i = 0; i < B; i++) {
            int64_t w = s * B + i;
            f->batch_valid[w] = f->st.valid, f->wlen[w] = (int32_t)(f->st.valid + len);
            window_tokens(f->wtok + w * W, W, f->st.valid, b->tokens + i * N + s * Cs, len);
            for (int64_t r = 0; r < W; r++)
                f->wtgt[w * W + r] = NN_IGNORE_INDEX;
            if (b->targets)
                memcpy(f->wtgt + w * W + f->st.valid, b->targets + i * N + s * Cs, sizeof(int32_t) * (size_t)len);
        }
        if (s + 1 < f->S)
            rc = step_strided(m, b->tokens + s * Cs, N, len, &f->st, NULL);
    }
    f->wb = (nn_batch){.B = SB, .tokens = f->wtok, .targets = f->wtgt, .lengths = f->wlen};
    return rc;
}

/* Window row (s*B + b, valid + i) is sequence b's position s*C + i. */
static int64_t window_row(const folded_t *f, const nn_model *m, int64_t b, int64_t n)
{
    int64_t s = n / m->cfg.fold_segment, w = s * m->B + b;
    return w * f->W + f->batch_valid[w] + n % m->cfg.fold_segment;
}

int nn_folded_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                      int64_t *scored, int32_t *pred)
{
    folded_t *f = m->folded;
    int rc = prepare(m, b);
    if (!rc)
        rc = nn_model_forward(&f->batch, &f->wb, training, step, loss, correct, scored, pred ? f->wpred : NULL);
    for (int64_t i = 0; !rc && pred && i < m->B; i++)
        for (int64_t n = 0; n < m->N; n++)
            pred[i * m->N + n] = f->wpred[window_row(f, m, i, n)];
    return rc;
}

int nn_folded_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale)
{
    folded_t *f = m->folded;
    (void)b; /* the windows of the last forward (f->wb) hold it */
    return nn_model_backward(&f->batch, &f->wb, step, scale);
}

int nn_folded_hidden(nn_model *m, const nn_batch *b, float *hidden)
{
    folded_t *f = m->folded;
    int64_t C = m->cfg.d_model;
    const float *xf;
    int rc = prepare(m, b);
    if (!rc)
        rc = nn_model_encode(&f->batch, &f->wb, &xf);
    for (int64_t i = 0; !rc && i < m->B; i++)
        for (int64_t n = 0; n < m->N; n++)
            memcpy(hidden + (i * m->N + n) * C, xf + window_row(f, m, i, n) * C, sizeof(float) * (size_t)C);
    return rc;
}

int nn_folded_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    const folded_t *f = m->folded;
    return nn_model_attn_inputs(&f->batch, app, q, k, v);
}
