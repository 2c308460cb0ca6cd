/* Greedy decoding at the answer positions: see generate.h. */
#include "generate.h"
#include "batch_buf.h"
#include "train.h"

#include <stdlib.h>
#include <string.h>

/* One batch slot: the example it decodes (-1: empty) and the first scored
 * position not decoded yet. */
typedef struct {
    int64_t example, next;
} gen_slot;

/* Reads the forward's predictions of slot s from position sl->next on:
 * records each generated token, and stops at the first one that changes an
 * input (later outputs read it: another forward is needed). Returns 1 when
 * the example is decoded to its end. */
static int take_predictions(const task_data *d, nn_batch_buf *bb, int64_t s, gen_slot *sl, const int32_t *pred,
                            int32_t *gen)
{
    int64_t N = d->len, e = sl->example;
    const int32_t *tgt = task_targets(d, e);
    int32_t *in = bb->tok + s * N;
    for (int64_t t = sl->next; t < N; t++) {
        if (tgt[t] == TASK_IGNORE)
            continue;
        int32_t g = pred[s * N + t];
        gen[e * N + t] = g;
        int64_t u = task_next_input(d, t);
        if (u < d->lengths[e] && in[u] != g) {
            in[u] = g;
            sl->next = t + 1;
            return 0;
        }
    }
    return 1;
}

/* Fills the empty slots with the next examples (*queued: the next one to
 * start) or blanks that score nothing; returns the slots in use. */
static int64_t fill_slots(const task_data *d, nn_batch_buf *bb, gen_slot *slot, int64_t B, int64_t n,
                          int64_t *queued)
{
    int64_t busy = 0;
    for (int64_t s = 0; s < B; s++) {
        if (slot[s].example < 0 && *queued < n) {
            slot[s] = (gen_slot){.example = *queued, .next = 0};
            nn_batch_buf_put(bb, d, s, (*queued)++);
        } else if (slot[s].example < 0)
            nn_batch_buf_blank(bb, d, s);
        busy += slot[s].example >= 0;
    }
    return busy;
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
    gen_slot *slot = malloc(sizeof *slot * (size_t)batch);
    if (!rc && (!pred || !slot))
        rc = attn_fail(ATTN_ENOMEM, "generation: out of memory for a batch of %lld x %lld", (long long)batch,
                       (long long)N);
    if (!rc)
        rc = nn_batch_buf_alloc(&bb, d, batch);
    for (int64_t s = 0; slot && s < batch; s++)
        slot[s].example = -1;
    int64_t queued = 0;
    while (!rc && fill_slots(d, &bb, slot, batch, n, &queued) > 0) {
        double loss;
        int64_t correct, scored;
        if ((rc = nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, pred)) != 0)
            break;
        if (forwards)
            ++*forwards;
        for (int64_t s = 0; s < batch; s++)
            if (slot[s].example >= 0 && take_predictions(d, &bb, s, &slot[s], pred, gen))
                slot[s].example = -1;
    }
    nn_batch_buf_free(&bb);
    free(pred);
    free(slot);
    return rc;
}
