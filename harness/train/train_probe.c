#include "train_probe.h"

#include "common/attn_error.h"
#include "harness/measure/measure.h"
#include "models/batch_buf.h"
#include "models/optim.h"

#include <math.h>
#include <string.h>

enum { TIMED_STEPS = 2 };

/* One optimizer step on batch bb as the trainer takes it. */
static int step(nn_model *m, const nn_batch_buf *bb, optim *opt, const nn_train_cfg *c, uint64_t key)
{
    int64_t accum = c->accum > 0 ? c->accum : 1, correct, scored;
    double loss;
    optim_grad_zero(m->grads, m->n_params, c->threads);
    int rc = 0;
    for (int64_t a = 0; !rc && a < accum; a++)
        if (!(rc = nn_model_forward(m, &bb->b, 1, key, &loss, &correct, &scored, NULL)))
            rc = nn_model_backward(m, &bb->b, key, 1.0f / (float)accum);
    return rc ? rc : optim_step(opt, m->params, m->grads, 1e-4f);
}

/* Steps and an evaluation forward of the fitted model on sample te. */
static int time_model(const train_run_opts *fitted, const task_data *te, train_probe *p)
{
    const nn_train_cfg *c = &fitted->train;
    int64_t B = c->batch;
    nn_model m;
    nn_batch_buf bb;
    optim opt;
    memset(&bb, 0, sizeof bb), memset(&opt, 0, sizeof opt);
    const optim_config oc = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .threads = c->threads};
    int rc = nn_model_init(&m, &fitted->model, 1);
    if (rc)
        return rc;
    if (!(rc = nn_model_plan(&m, B, te->len, nn_rows_max(te, B), c->threads)) &&
        !(rc = nn_batch_buf_alloc(&bb, te, B)) && !(rc = optim_init(&opt, m.n_params, &oc, NULL, 0))) {
        for (int64_t i = 0; i < B; i++)
            nn_batch_buf_put(&bb, te, i, i % te->n);
        rc = step(&m, &bb, &opt, c, 0); /* untimed: first touches of the plan's buffers */
        double t0 = measure_now_s();
        for (int s = 1; !rc && s <= TIMED_STEPS; s++)
            rc = step(&m, &bb, &opt, c, (uint64_t)s);
        p->step_s = (measure_now_s() - t0) / TIMED_STEPS;
        double loss, t1 = measure_now_s();
        int64_t correct, scored;
        if (!rc)
            rc = nn_model_forward(&m, &bb.b, 0, 0, &loss, &correct, &scored, NULL);
        p->eval_s = measure_now_s() - t1;
    }
    optim_fini(&opt);
    nn_batch_buf_free(&bb);
    nn_model_free(&m);
    return rc;
}

int train_probe_run(const train_run_opts *r, train_probe *p)
{
    memset(p, 0, sizeof *p);
    train_run_opts fitted;
    task_data te, twice;
    int64_t B = r->train.batch;
    double t0 = measure_now_s();
    int rc = train_run_fit_sample(r, B, &fitted, &te);
    if (rc)
        return rc;
    double t1 = measure_now_s();
    /* twice the examples: the difference is their cost, the rest a split's fixed cost (a corpus read) */
    if (!(rc = train_run_fit_sample(r, 2 * B, &fitted, &twice))) {
        double once_s = t1 - t0, twice_s = measure_now_s() - t1;
        p->data_s = twice_s > once_s ? (twice_s - once_s) / (double)B : 0;
        p->split_s = once_s - p->data_s * (double)B > 0 ? once_s - p->data_s * (double)B : 0;
        task_data_free(&twice);
    }
    p->len = te.len;
    if (!rc)
        rc = te.n > 0 ? time_model(&fitted, &te, p) : attn_fail(ATTN_EINVAL, "%s: the probe's sample is empty", r->task);
    task_data_free(&te);
    return rc;
}

static double batches(int64_t examples, int64_t batch) { return ceil((double)examples / (double)batch); }

/* How much more an evaluation batch costs at s times the trained length:
 * per token, the dense layers cost ~ 8 d^2 + 4 d mlp and attention ~ 4 d L,
 * so the batch costs s (1 + a s) / (1 + a) with a = L / (2 d + mlp). */
static double length_factor(const train_run_opts *r, int64_t len, double s)
{
    double d = (double)r->model.d_model, a = (double)len / (2 * d + (double)r->model.mlp);
    return s * (1 + a * s) / (1 + a);
}

double train_probe_seconds(const train_run_opts *r, const train_probe *p)
{
    const nn_train_cfg *c = &r->train;
    double evals = c->eval_every > 0 ? floor((double)c->steps / (double)c->eval_every) : 0;
    int64_t per_eval = c->eval_n > 0 && c->eval_n < r->valid_n ? c->eval_n : r->valid_n;
    double s = 3 * p->split_s + p->data_s * (double)(r->train_n + r->valid_n + r->test_n) + p->step_s * (double)c->steps +
               p->eval_s * (evals * batches(per_eval, c->batch) + batches(r->test_n, c->batch));
    double cells = (r->depths > 0 ? r->depths : 1) * (1.0 + r->n_swaps) * (1.0 + r->n_budgets);
    for (int i = 0; i < r->n_scales; i++) {
        double f = (double)r->scale[i];
        s += cells * (p->eval_s * batches(r->test_n, c->batch) * length_factor(r, p->len, f) + p->split_s +
                      p->data_s * f * (double)r->test_n);
    }
    return s;
}
