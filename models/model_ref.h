/* The whole model in double precision (model_ref.c): the same loss as
 * nn_model_forward, from the layers' references, on the parameters P (a
 * double blob with the layout of m->params). For gradient checks. */
#ifndef NN_MODEL_REF_H
#define NN_MODEL_REF_H

#include "model.h"

int nn_model_loss_ref(const nn_model *m, const double *P, const nn_batch *b, int64_t N, double *loss);

#endif
