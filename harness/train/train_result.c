/* Typed evaluation results, their CSV cells and console lines (train_result.h). */
#include "train_result.h"

#include "harness/measure/sysload.h"
#include "harness/results/csvw.h"
#include "tasks/answer.h"

#include <stdlib.h>
#include <string.h>

void train_result_init(train_result *r) { memset(r, 0, sizeof *r); }

void train_result_free(train_result *r)
{
    free(r->evals);
    train_result_init(r);
}

int train_result_add_eval(train_result *r, const train_eval_result *e)
{
    if (r->n_evals == r->cap) {
        int cap = r->cap ? 2 * r->cap : 8;
        train_eval_result *grown = realloc(r->evals, sizeof *grown * (size_t)cap);
        if (!grown)
            return attn_fail(ATTN_ENOMEM, "training: out of memory for %d evaluation results", cap);
        r->evals = grown, r->cap = cap;
    }
    r->evals[r->n_evals++] = *e;
    return 0;
}

/* What a causal stream of m keeps per sequence, summed over the layers: the
 * state_bytes column, which recall plots draw accuracy against. */
static size_t model_state_bytes(const nn_model *m)
{
    size_t state = 0;
    if (m->cfg.variant == NN_VARIANT_FOLDED) /* the carried buffers; each window's keys and values are recomputed */
        return sizeof(float) * nn_folded_state_floats(m, 1);
    if (m->cfg.variant == NN_VARIANT_HMT) /* memories + sensory embeddings; each window is recomputed */
        return sizeof(float) * nn_hmt_state_floats(&m->cfg);
    for (int64_t l = 0; l < m->cfg.layers; l++) {
        const nn_attn *a = &m->blk[l].attn;
        if (a->cfg.kernel->state_bytes) {
            attn_args sa = a->ctx.args;
            sa.B = 1; /* per sequence */
            state += a->cfg.kernel->state_bytes(&sa);
        }
    }
    return state;
}

void train_eval_begin(train_eval_result *e, train_eval_kind kind, const char *split, const nn_model *m,
                      const task_data *d)
{
    memset(e, 0, sizeof *e);
    e->kind = kind, e->metric = train_eval_metric(d);
    e->metric2 = d->answer_rule != TASK_ANSWER_NONE ? "token_accuracy" : NULL;
    snprintf(e->split, sizeof e->split, "%s", split);
    snprintf(e->data_source, sizeof e->data_source, "%s", d->data_source);
    e->state_bytes = model_state_bytes(m);
}

const char *train_eval_metric(const task_data *d)
{
    return d->answer_rule != TASK_ANSWER_NONE ? task_answer_metric(d->answer_rule) : "accuracy";
}

void train_eval_from_nn(const nn_eval_result *e, train_eval_result *out)
{
    if (e->has_answer) {
        out->value = e->answer, out->ci_low = e->answer_lo, out->ci_high = e->answer_hi;
        out->value2 = e->accuracy, out->ci2_low = e->ci_low, out->ci2_high = e->ci_high;
    } else
        out->value = e->accuracy, out->ci_low = e->ci_low, out->ci_high = e->ci_high;
    out->examples = e->examples;
    out->has_ponder = e->has_ponder, out->ponder_steps = e->ponder_steps;
}

int train_eval_measure(nn_model *m, const task_data *d, int64_t limit, int64_t batch, int threads,
                       train_eval_kind kind, const char *split, train_eval_result *out)
{
    nn_eval_result e;
    int rc = nn_evaluate(m, d, limit, batch, threads, &e);
    /* after the evaluation: it plans the model, which sizes the state */
    train_eval_begin(out, kind, split, m, d);
    if (rc) {
        out->status = TRAIN_EVAL_ERROR;
        snprintf(out->reason, sizeof out->reason, "%s", attn_last_error());
        return rc;
    }
    train_eval_from_nn(&e, out);
    return 0;
}

/* The metric's cells of a row. */
static void fill_metric(csvw_row *row, const char *metric, double value, double lo, double hi)
{
    csvw_row_set(row, ATTN_COL_METRIC, "%s", metric);
    csvw_row_set(row, ATTN_COL_VALUE, "%.6f", value);
    csvw_row_set(row, ATTN_COL_CI_LOW, "%.6f", lo);
    csvw_row_set(row, ATTN_COL_CI_HIGH, "%.6f", hi);
}

void train_eval_fill_second(const train_eval_result *e, csvw_row *row)
{
    train_eval_fill(e, row);
    fill_metric(row, e->metric2, e->value2, e->ci2_low, e->ci2_high);
}

void train_eval_fill_ponder(const train_eval_result *e, csvw_row *row)
{
    train_eval_fill(e, row);
    fill_metric(row, TRAIN_PONDER_METRIC, e->ponder_steps, e->ponder_steps, e->ponder_steps);
}

void train_eval_fill(const train_eval_result *e, csvw_row *row)
{
    if (e->kind == TRAIN_EVAL_TEST) { /* known only once trained: after the job_id */
        char params[ATTN_CELL_MAX];
        memcpy(params, row->cell[ATTN_COL_PARAMS], sizeof params);
        csvw_row_set(row, ATTN_COL_PARAMS, "%s;best_step=%lld;weights=%s", params, (long long)e->best_step,
                     e->weights == TRAIN_WEIGHTS_BEST ? "best" : "last");
    }
    csvw_row_set(row, ATTN_COL_STATE_BYTES, "%zu", e->state_bytes);
    fill_metric(row, e->metric, e->value, e->ci_low, e->ci_high);
    csvw_row_set(row, ATTN_COL_TRAIN_STEPS, "%lld", (long long)e->step);
    const train_progress *p = &e->progress;
    if (e->kind == TRAIN_EVAL_VALID && p->train_time_s > 0) { /* the other rows leave these columns empty */
        csvw_row_set(row, ATTN_COL_TRAIN_TIME_S, "%.3f", p->train_time_s);
        csvw_row_set(row, ATTN_COL_TOKENS_PER_S, "%.1f", p->tokens_per_s);
        csvw_row_set(row, ATTN_COL_TIME_MS_MEDIAN, "%.4g", 1e3 * p->train_time_s / (double)e->step);
        csvw_row_set(row, ATTN_COL_HOST_RANKS, "%d", sysload_host_ranks());
    }
    csvw_row_set(row, ATTN_COL_PEAK_RSS_BYTES, "%zu", e->peak_rss_bytes);
    if (e->status == TRAIN_EVAL_OK)
        csvw_row_set(row, ATTN_COL_STATUS, "ok");
    else
        csvw_row_set(row, ATTN_COL_STATUS, "error:%s", e->reason);
}

void train_eval_print(FILE *f, const train_eval_result *e)
{
    const train_progress *p = &e->progress;
    char second[64] = ""; /* the teacher-forced accuracy beside a generated-answer headline */
    if (e->metric2)
        snprintf(second, sizeof second, " (%s %.4f)", e->metric2, e->value2);
    switch (e->kind) {
    case TRAIN_EVAL_VALID:
        fprintf(f, "step %lld/%lld  train loss %.4f  valid %s %.4f [%.3f, %.3f]%s  %.0f tok/s  (elapsed %.0fs, ETA %dm%02ds)\n",
                (long long)e->step, (long long)p->steps, p->train_loss, e->metric, e->value, e->ci_low, e->ci_high,
                second, p->tokens_per_s, p->elapsed_s, (int)p->eta_s / 60, (int)p->eta_s % 60);
        break;
    case TRAIN_EVAL_TEST:
        fprintf(f, "test: %s %.4f [%.4f, %.4f]%s on %lld examples (%s), weights of step %lld (%s)\n", e->metric,
                e->value, e->ci_low, e->ci_high, second, (long long)e->examples, e->data_source, (long long)e->step,
                e->weights == TRAIN_WEIGHTS_BEST ? "best validation" : "last");
        break;
    case TRAIN_EVAL_CHECKPOINT:
        fprintf(f, "eval: %s %s: %s %.4f [%.4f, %.4f]%s on %lld examples\n", e->task, e->split, e->metric, e->value,
                e->ci_low, e->ci_high, second, (long long)e->examples);
        break;
    }
}
