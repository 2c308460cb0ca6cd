/* Batch buffers with a dataset's row layout: the training loop, the
 * evaluation and greedy decoding copy examples into these slots. */
#ifndef NN_BATCH_BUF_H
#define NN_BATCH_BUF_H

#include "model.h"
#include "tasks/task.h"

#include <stdint.h>

typedef struct {
    int64_t B, N;
    int32_t *tok, *tok2, *tgt, *lab, *len, *len2;
    float *in, *val;          /* regress datasets: inputs and values */
    uint8_t *sc;              /* regress datasets: scored flags */
    nn_batch b;               /* points at the buffers above */
} nn_batch_buf;

/* Room for B examples of d (the arrays d has). */
int nn_batch_buf_alloc(nn_batch_buf *bb, const task_data *d, int64_t B);
void nn_batch_buf_free(nn_batch_buf *bb);

/* Copies example e of d into slot i. */
void nn_batch_buf_put(nn_batch_buf *bb, const task_data *d, int64_t i, int64_t e);

/* Slot i of a padded evaluation batch scores nothing (LM) or repeats a real example. */
void nn_batch_buf_blank(nn_batch_buf *bb, const task_data *d, int64_t i);

/* An evaluation batch: examples first .. first + real - 1 of d in slots
 * 0 .. real - 1, the other slots blank. */
void nn_batch_buf_fill(nn_batch_buf *bb, const task_data *d, int64_t first, int64_t real);

#endif
