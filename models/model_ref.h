/* The whole model in double precision (model_ref.c): the same loss as
 * nn_model_forward, from the layers' references, on the parameters P (a
 * double blob with the layout of m->params). For gradient checks. */
#ifndef NN_MODEL_REF_H
#define NN_MODEL_REF_H

#include "model.h"

int nn_model_loss_ref(const nn_model *m, const double *P, const nn_batch *b, int64_t N, double *loss);

/* Block application a on x (Bt, N, d_model) in place; h, y: scratch of x's
 * size; seq_len (Bt) or NULL as nn_attn_forward_ref. */
int nn_block_forward_ref(const nn_model *m, int64_t a, const double *P, double *x, double *h, double *y, int64_t Bt,
                         int64_t N, const int64_t *seq_len);

/* The folded model (models/folded_ref.c), segment after segment: the buffers
 * are evolved with the parameters P_state and the loss is taken with P on
 * them. P_state = P: the model's loss; a fixed P_state: the loss whose
 * gradient in P is the truncated one the fp32 model computes (buffers held
 * constant). */
int nn_folded_loss_ref(const nn_model *m, const double *P, const double *P_state, const nn_batch *b, int64_t N,
                       double *loss);

/* The hmt model (models/hmt_ref.c), segment after segment: the memories are
 * written with the parameters P_state and the loss is taken with P on them
 * (summaries, recall, windows; with unroll 2 the newest memory a segment
 * reads is the one the previous segment writes with P). P_state = P: the
 * model's loss; a fixed P_state: the truncated objective whose gradient in P
 * the fp32 model computes. */
int nn_hmt_loss_ref(const nn_model *m, const double *P, const double *P_state, const nn_batch *b, int64_t N,
                    double *loss);

#endif
