/* Batch buffers: see batch_buf.h. */
#include "batch_buf.h"

#include <stdlib.h>
#include <string.h>

int nn_batch_buf_alloc(nn_batch_buf *bb, const task_data *d, int64_t B)
{
    memset(bb, 0, sizeof *bb);
    bb->B = B, bb->N = d->len;
    size_t cells = (size_t)(B * d->len);
    bb->tok = malloc(cells * sizeof(int32_t));
    bb->len = malloc((size_t)B * sizeof(int32_t));
    int ok = bb->tok && bb->len;
    if (d->tokens2)
        ok = ok && (bb->tok2 = malloc(cells * sizeof(int32_t))) && (bb->len2 = malloc((size_t)B * sizeof(int32_t)));
    if (d->targets)
        ok = ok && (bb->tgt = malloc(cells * sizeof(int32_t)));
    if (d->labels)
        ok = ok && (bb->lab = malloc((size_t)B * sizeof(int32_t)));
    if (d->inputs)
        ok = ok && (bb->in = malloc(cells * (size_t)d->dim * sizeof(float))) && (bb->val = malloc(cells * sizeof(float)))
             && (bb->sc = malloc(cells));
    bb->b = (nn_batch){.B = B, .tokens = bb->tok, .tokens2 = bb->tok2, .labels = bb->lab, .targets = bb->tgt,
                       .lengths = bb->len, .lengths2 = bb->len2, .inputs = bb->in, .values = bb->val, .scored = bb->sc};
    return ok ? 0 : attn_fail(ATTN_ENOMEM, "training: cannot allocate a batch of %lld x %lld", (long long)B,
                              (long long)d->len);
}

void nn_batch_buf_free(nn_batch_buf *bb)
{
    free(bb->tok), free(bb->tok2), free(bb->tgt), free(bb->lab), free(bb->len), free(bb->len2);
    free(bb->in), free(bb->val), free(bb->sc);
}

void nn_batch_buf_put(nn_batch_buf *bb, const task_data *d, int64_t i, int64_t e)
{
    size_t row = sizeof(int32_t) * (size_t)d->len;
    memcpy(bb->tok + i * d->len, task_tokens(d, e), row);
    bb->len[i] = d->lengths[e];
    if (bb->tok2) {
        memcpy(bb->tok2 + i * d->len, task_tokens2(d, e), row);
        bb->len2[i] = d->lengths2[e];
    }
    if (bb->tgt)
        memcpy(bb->tgt + i * d->len, task_targets(d, e), row);
    if (bb->lab)
        bb->lab[i] = d->labels[e];
    if (bb->in) {
        memcpy(bb->in + i * d->len * d->dim, task_inputs(d, e), sizeof(float) * (size_t)(d->len * d->dim));
        memcpy(bb->val + i * d->len, task_values(d, e), sizeof(float) * (size_t)d->len);
        memcpy(bb->sc + i * d->len, task_scored(d, e), (size_t)d->len);
    }
}

void nn_batch_buf_blank(nn_batch_buf *bb, const task_data *d, int64_t i)
{
    nn_batch_buf_put(bb, d, i, 0);
    for (int64_t n = 0; bb->tgt && n < d->len; n++)
        bb->tgt[i * d->len + n] = TASK_IGNORE;
    if (bb->sc)
        memset(bb->sc + i * d->len, 0, (size_t)d->len);
}

void nn_batch_buf_fill(nn_batch_buf *bb, const task_data *d, int64_t first, int64_t real)
{
    for (int64_t i = 0; i < bb->B; i++)
        if (i < real)
            nn_batch_buf_put(bb, d, i, first + i);
        else
            nn_batch_buf_blank(bb, d, i);
}
