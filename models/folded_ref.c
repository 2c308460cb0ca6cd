/* The folded model in double precision, written as the recurrence itself:
 * segment after segment, block application after application, on windows of
 * exactly (buffer rows + segment) rows, none of the fp32 driver's batching
 * of all segments or padded windows. The twin the fp32 model is checked
 * against (tests/test_folded.c). */
#include "model_ref.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const nn_model *m;
    int64_t B, N, S, A, mb, C;
    double *x, *h, *y, *state, *next, *out; /* windows (B, W, C); buffers (A, B, m, C); out (B, N, C) */
    double *record;                         /* (S, A, B, m, C): the buffers every segment started from */
    int64_t *valid;                         /* (S) buffer rows of every segment's windows */
    int32_t *tok;
} ref_t;

static int64_t seg_len(const ref_t *r, int64_t s)
{
    int64_t Cs = r->m->cfg.fold_segment;
    return r->N - s * Cs < Cs ? r->N - s * Cs : Cs;
}

/* Segment s's windows through every application with parameters P; the
 * buffers come from r->record (use = 1) or the running state (recorded). */
static int segment_ref(ref_t *r, const double *P, const nn_batch *b, int64_t s, int64_t v, int use)
{
    const nn_model_cfg *c = &r->m->cfg;
    int64_t len = seg_len(r, s), Wn = v + len, C = r->C, B = r->B, mC = r->mb * C;
    int64_t keep = Wn < r->mb ? Wn : r->mb;
    size_t block = (size_t)(B * mC);
    for (int64_t i = 0; i < B; i++) {
        memset(r->tok + i * Wn, 0, sizeof *r->tok * (size_t)v);
        memcpy(r->tok + i * Wn + v, b->tokens + i * r->N + s * c->fold_segment, sizeof *r->tok * (size_t)len);
    }
    int rc = nn_embed_forward_ref(&r->m->emb, P, r->tok, r->x, B, Wn);
    if (!rc && c->pos == NN_POS_SINUSOID)
        nn_sinusoid_add_ref(r->x, B, Wn, C);
    for (int64_t a = 0; !rc && a < r->A; a++) {
        double *buf = use ? r->record + (size_t)(s * r->A + a) * block : r->state + (size_t)a * block;
        if (!use)
            memcpy(r->record + (size_t)(s * r->A + a) * block, buf, sizeof *buf * block);
        for (int64_t i = 0; i < B; i++)
            memcpy(r->x + i * Wn * C, buf + i * mC, sizeof *buf * (size_t)(v * C));
        rc = nn_block_forward_ref(r->m, a, P, r->x, r->h, r->y, B, Wn, NULL);
        for (int64_t i = 0; !rc && i < B; i++) /* the new buffer: the last rows of this application's output */
            memcpy(r->next + (size_t)a * block + i * mC, r->x + (i * Wn + Wn - keep) * C, sizeof *buf * (size_t)(keep * C));
    }
    for (int64_t i = 0; !rc && i < B; i++)
        memcpy(r->out + (i * r->N + s * c->fold_segment) * C, r->x + (i * Wn + v) * C, sizeof *r->x * (size_t)(len * C));
    memcpy(r->state, r->next, sizeof *r->state * block * (size_t)r->A);
    return rc;
}

static int pass_ref(ref_t *r, const double *P, const nn_batch *b, int use)
{
    int64_t v = 0;
    int rc = 0;
    memset(r->state, 0, sizeof *r->state * (size_t)(r->A * r->B * r->mb * r->C));
    for (int64_t s = 0; !rc && s < r->S; s++) {
        if (!use)
            r->valid[s] = v;
        rc = segment_ref(r, P, b, s, r->valid[s], use);
        v = v + seg_len(r, s) < r->mb ? v + seg_len(r, s) : r->mb;
    }
    return rc;
}

static int head_ref(const ref_t *r, const double *P, const nn_batch *b, double *loss)
{
    const nn_model *m = r->m;
    int64_t T = r->B * r->N, V = m->cfg.vocab;
    double *logits = calloc((size_t)(T * V), sizeof *logits);
    if (!logits)
        return attn_fail(ATTN_ENOMEM, "folded reference: out of memory");
    nn_norm_forward_ref(&m->nf, P, r->out, r->h, T);
    nn_dense_forward_ref(&m->h1, P, r->h, logits, T);
    int rc = nn_xent_ref(logits, b->targets, T, V, NULL, loss);
    free(logits);
    return rc;
}

int nn_folded_loss_ref(const nn_model *m, const double *P, const double *P_state, const nn_batch *b, int64_t N,
                       double *loss)
{
    const nn_model_cfg *c = &m->cfg;
    if (c->dropout > 0)
        return attn_fail(ATTN_EINVAL, "folded reference: expected dropout 0, found %g", c->dropout);
    ref_t r = {.m = m, .B = b->B, .N = N, .S = (N + c->fold_segment - 1) / c->fold_segment,
               .A = c->layers * c->loops, .mb = c->fold_buffer, .C = c->d_model};
    size_t win = (size_t)(r.B * (N > nn_fold_window(c) ? N : nn_fold_window(c)) * r.C); /* also the head's scratch */
    size_t state = (size_t)(r.A * r.B * r.mb * r.C) + 1;
    r.x = calloc(win, sizeof *r.x), r.h = calloc(win, sizeof *r.h), r.y = calloc(win, sizeof *r.y);
    r.state = calloc(state, sizeof *r.state), r.next = calloc(state, sizeof *r.next);
    r.out = calloc((size_t)(r.B * N * r.C), sizeof *r.out), r.record = calloc(state * (size_t)r.S, sizeof *r.record);
    r.valid = calloc((size_t)r.S, sizeof *r.valid), r.tok = calloc(win, sizeof *r.tok);
    int rc = r.x && r.h && r.y && r.state && r.next && r.out && r.record && r.valid && r.tok
                 ? 0 : attn_fail(ATTN_ENOMEM, "folded reference: out of memory");
    /* the buffers from P_state, then the loss from P on those buffers */
    if (!rc && !(rc = pass_ref(&r, P_state, b, 0)) && P != P_state)
        rc = pass_ref(&r, P, b, 1);
    if (!rc)
        rc = head_ref(&r, P, b, loss);
    free(r.x), free(r.h), free(r.y), free(r.state), free(r.next), free(r.out), free(r.record), free(r.valid), free(r.tok);
    return rc;
}
