/* Greedy decoding of a trained causal LM at a task's answer positions
 * (docs/tasks.md, "Generated answers").
 *
 * For every example, the scored positions t (targets[t] != TASK_IGNORE) are
 * decoded in order: the model's argmax at t is the generated token, and it
 * replaces the input token that target t predicts (task_next_input) before
 * any later position is read — exactly what token-by-token generation of the
 * answer gives, since a causal model's output at t reads inputs 0..t only.
 * Inputs that no scored position predicts (the prompt, the queries between
 * multiquery's answers, landmark tokens) stay the dataset's.
 *
 * Cost: a teacher-forced forward already holds the greedy output up to and
 * including the first generated token that differs from the dataset's (every
 * input before it is what generation would have fed), so a batch costs its
 * teacher-forced forward (the one an evaluation runs anyway) plus one per
 * later difference of its slowest example, not one per answer token. */
#ifndef NN_GENERATE_H
#define NN_GENERATE_H

#include "batch_buf.h"
#include "model.h"
#include "tasks/task.h"

#include <stdint.h>

/* Continues decoding the batch bb holds — examples first .. first + real - 1
 * of d in its slots 0 .. real - 1 — from pred, the predictions of the
 * forward just run on it (the teacher-forced one). Overwrites bb's tokens
 * and pred. gen [d->n][d->len] gets the generated token at every scored
 * position of those examples; *forwards (may be NULL) grows by the forward
 * passes taken. */
int nn_generate_batch(nn_model *m, const task_data *d, nn_batch_buf *bb, int64_t first, int64_t real, int32_t *pred,
                      int32_t *gen, int64_t *forwards);

/* Decodes the first n examples of TASK_LM dataset d with m (an lm head) in
 * batches of `batch`; gen [n][d->len] gets the generated token at every
 * scored position (other entries are left as they were). *forwards (may be
 * NULL) counts the forward passes. */
int nn_generate(nn_model *m, const task_data *d, int64_t n, int64_t batch, int threads, int32_t *gen,
                int64_t *forwards);

#endif
