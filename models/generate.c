/* Greedy decoding at the answer positions: see generate.h. */
#include "generate.h"
#include "train.h"

#include <stdlib.h>
#include <string.h>

/* Reads the forward's predictions of slot s (example e) from scored
 * position *next on: records each generated token, and stops at the first
 * one that changes an input (later outputs read it: another forward is
 * needed). Returns 1 when the example is decoded to its end. */
static int take_predictions(const task_data *d, nn_batch_buf *bb, int64_t s, int64_t e, int64_t *next,
                            const int32_t *pred, int32_t *gen)
{
    int64_t N = d->len;
    const int32_t *tgt = task_targets(d, e);
    int32_t *in = bb->tok + s * N;
    for (int64_t t = *next; t < N; t++) {
        if (tgt[t] == TASK_IGNORE)
            continue;
        int32_t g = pred[s * N + t];
        gen[e * N + t] = g;
        int64_t u = task_next_input(d, t);
        if (u < d->lengths[e] && in[u] != g) {
            in[u] = g;
            *next = t + 1;
            return 0;
        }
    }
    return 1;
}

int nn_generate_batch(nn_model *m, const task_data *d, nn_batch_buf *bb, int64_t first, int64_t real, int32_t *pred,
                      int32_t *gen, int64_t *forwards)
{
    int64_t *next = calloc((size_t)real, sizeof *next), active = 0; /* -1: decoded */
    if (!next)
        return attn_fail(ATTN_ENOMEM, "generation: out of memory for a batch of %lld", (long long)real);
    for (int64_t i = 0; i < real; i++)
        if (take_predictions(d, bb, i, first + i, &next[i], pred, gen))
            next[i] = -1;
        else
            active++;
    int rc = 0;
    while (!rc && active > 0) {
        double loss;
        int64_t correct, scored;
        if ((rc = nn_model_forward(m, &bb->b, 0, 0, &loss, &correct, &scored, pred)) != 0)
            break;
        if (forwards)
            ++*forwards;
        for (int64_t i = 0; i < real; i++)
            if (next[i] >= 0 && take_predictions(d, bb, i, first + i, &next[i], pred, gen))
                next[i] = -1, active--;
    }
    free(next);
    return rc;
}

int nn_generate(nn_model *m, const task_data *d, int64_t n, int64_t batch, int threads, int32_t *gen,
                int64_t *forwards)
{
    if (forwards)
        *forwards = 0;
    if (d->kind != TASK_LM || m->cfg.head != NN_HEAD_LM)
        return attn_fail(ATTN_EINVAL, "generation: expected an lm model on a language-model task, found task %s",
                         d->name);
    int64_t N = d->len;
    n = n < d->n ? n : d->n;
    int rc = 0;
    if (!m->planned || m->B != batch || m->N != N || m->rows_max < nn_rows_max(d, batch))
        rc = nn_model_plan(m, batch, N, nn_rows_max(d, batch), threads);
    nn_batch_buf bb;
    memset(&bb, 0, sizeof bb);
    int32_t *pred = malloc(sizeof *pred * (size_t)(batch * N));
    if (!rc && !pred)
        rc = attn_fail(ATTN_ENOMEM, "generation: out of memory for a batch of %lld x %lld", (long long)batch,
                       (long long)N);
    if (!rc)
        rc = nn_batch_buf_alloc(&bb, d, batch);
    for (int64_t s = 0; !rc && s < n; s += batch) {
        int64_t real = n - s < batch ? n - s : batch;
        nn_batch_buf_fill(&bb, d, s, real);
        double loss;
        int64_t correct, scored;
        if ((rc = nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, pred)) != 0)
            break;
        if (forwards)
            ++*forwards;
        rc = nn_generate_batch(m, d, &bb, s, real, pred, gen, forwards);
    }
    nn_batch_buf_free(&bb);
    free(pred);
    return rc;
}
