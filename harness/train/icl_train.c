/* In-context regression training and its error curve (icl_train.h). */
#include "icl_train.h"

#include "models/batch_buf.h"
#include "models/train.h"

#include <stdio.h>
#include <string.h>

void icl_train_defaults(icl_train_opts *o)
{
    *o = (icl_train_opts){.layers = 2, .d_model = 64, .heads = 2, .mlp = 128, .steps = 2000, .batch = 64,
                          .train_n = 16384, .lr = 1e-3, .seed = 1, .threads = 2};
    snprintf(o->kernel, sizeof o->kernel, "flash");
}

void icl_model_cfg(const icl_train_opts *o, const icl_linreg_cfg *t, nn_model_cfg *c)
{
    nn_model_cfg_defaults(c);
    c->variant = NN_VARIANT_LM, c->head = NN_HEAD_REGRESS, c->causal = 1;
    c->vocab = 1, c->in_dim = t->d, c->max_len = icl_prompt_len(t->points);
    c->layers = o->layers, c->d_model = o->d_model, c->heads = o->heads, c->mlp = o->mlp;
    c->pos = NN_POS_LEARNED; /* x and y positions alternate: the positions tell them apart */
    snprintf(c->kernels[0], sizeof c->kernels[0], "%s", o->kernel);
}

/* Batch errors into curve: the predictions come in (example, position) order. */
static void add_batch(const task_data *d, int64_t first, int64_t real, const float *pred, icl_curve *curve)
{
    int64_t r = 0;
    for (int64_t i = 0; i < real; i++) {
        const uint8_t *sc = task_scored(d, first + i);
        const float *val = task_values(d, first + i);
        for (int64_t n = 0; n < d->len; n++)
            if (sc[n]) {
                double e = (double)pred[r++] - (double)val[n];
                icl_curve_add(curve, n / 2, e * e); /* x_{k+1} sits at position 2k */
            }
    }
}

int icl_model_curve(nn_model *m, const task_data *d, int64_t batch, int threads, icl_curve *curve)
{
    int rc = nn_model_plan(m, batch, d->len, nn_rows_max(d, batch), threads);
    nn_batch_buf bb;
    memset(&bb, 0, sizeof bb);
    if (!rc)
        rc = nn_batch_buf_alloc(&bb, d, batch);
    for (int64_t s = 0; !rc && s < d->n; s += batch) {
        int64_t real = d->n - s < batch ? d->n - s : batch, correct, scored, n;
        double loss;
        nn_batch_buf_fill(&bb, d, s, real);
        if ((rc = nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, NULL)) != 0)
            break;
        add_batch(d, s, real, nn_model_regress_out(m, &n), curve);
    }
    nn_batch_buf_free(&bb);
    return rc;
}

/* A progress line every tenth of the training: the training loss, mean
 * squared error (not divided by d) over the steps since the last line. */
static int progress(const nn_eval_point *pt, void *ud)
{
    const icl_train_opts *o = ud;
    if (o->progress)
        fprintf(stderr, "icl: %s step %lld/%lld train loss %.4f (%.0f s)\n", o->kernel, (long long)pt->step,
                (long long)o->steps, pt->train_loss, pt->elapsed_s);
    return 0;
}

int icl_train_curve(const icl_train_opts *o, const icl_linreg_cfg *t, const param_bag *task_params, uint64_t data_seed,
                    const task_data *test, icl_curve *curve, char *desc, size_t desc_n)
{
    nn_model_cfg c;
    icl_model_cfg(o, t, &c);
    nn_model_describe(&c, desc, desc_n);
    task_data train;
    nn_model m;
    memset(&m, 0, sizeof m);
    int rc = icl_curve_init(curve, t->points);
    if (rc)
        return rc;
    if ((rc = task_icl_linreg.make(task_params, TASK_TRAIN, data_seed, o->train_n, NULL, &train)) != 0)
        return rc;
    nn_train_cfg tc = {.steps = o->steps, .batch = o->batch, .accum = 1, .warmup = o->steps / 10, .lr = o->lr,
                       .min_lr_ratio = 0.1, .weight_decay = 0.01, .clip = 1, .sched = OPTIM_SCHED_COSINE,
                       .seed = o->seed, .threads = o->threads,
                       .eval_every = o->steps >= 10 ? o->steps / 10 : 1};
    int64_t best;
    if (!(rc = nn_model_init(&m, &c, o->seed)) && !(rc = nn_train(&m, &train, NULL, &tc, progress, (void *)o, &best)))
        rc = icl_model_curve(&m, test, o->batch, o->threads, curve);
    nn_model_free(&m);
    task_data_free(&train);
    return rc;
}
