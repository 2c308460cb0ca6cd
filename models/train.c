#include "train.h"
#include "batch_buf.h"
#include "generate.h"

#include "tasks/answer.h"
#include "tasks/metrics.h"

#include "common/rng.h"
#include "common/rss.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int64_t nn_rows_max(const task_data *d, int64_t batch)
{
    if (!d->targets && !d->scored)
        return batch;
    int64_t most = 0; /* the densest example, times the batch: a safe bound */
    for (int64_t i = 0; i < d->n; i++) {
        int64_t s = 0;
        for (int64_t n = 0; n < d->len; n++)
            s += d->scored ? task_scored(d, i)[n] != 0 : task_targets(d, i)[n] != TASK_IGNORE;
        most = s > most ? s : most;
    }
    return most * batch > 0 ? most * batch : 1;
}

int nn_evaluate(nn_model *m, const task_data *d, int64_t limit, int64_t batch, int threads, nn_eval_result *r)
{
    memset(r, 0, sizeof *r);
    if (d->kind == TASK_REGRESS) /* no accuracy to count: its error curve is icl_model_curve's (harness/train) */
        return attn_fail(ATTN_EINVAL, "evaluation: expected a classification or LM dataset, found the regression "
                         "dataset %s", d->name);
    int64_t n = limit > 0 && limit < d->n ? limit : d->n, N = d->len;
    int rc = 0;
    if (!m->planned || m->B != batch || m->N != N || (d->targets && m->rows_max < nn_rows_max(d, batch)))
        rc = nn_model_plan(m, batch, N, nn_rows_max(d, batch), threads);
    nn_batch_buf bb;
    memset(&bb, 0, sizeof bb);
    /* a task with references also decodes its answers, from the same forward */
    int answers = d->answer_rule != TASK_ANSWER_NONE && m->cfg.head == NN_HEAD_LM;
    int32_t *pred = malloc(sizeof *pred * (size_t)(batch * N));
    int32_t *gen = answers ? malloc(sizeof *gen * (size_t)(n * N)) : NULL;
    if (!rc)
        rc = pred && (gen || !answers) ? nn_batch_buf_alloc(&bb, d, batch)
                                       : attn_fail(ATTN_ENOMEM, "evaluation: out of memory");
    double sum_acc = 0, sum_acc2 = 0, loss_sum = 0, ponder_sum = 0;
    int64_t hits = 0, pos = 0, exact = 0, counted = 0, batches = 0;
    for (int64_t s = 0; !rc && s < n; s += batch) {
        int64_t real = n - s < batch ? n - s : batch;
        nn_batch_buf_fill(&bb, d, s, real);
        double loss;
        int64_t correct, scored;
        if ((rc = nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, pred)) != 0)
            break;
        loss_sum += loss, ponder_sum += nn_model_halting_stats(m).mean_steps, batches++;
        for (int64_t i = 0; i < real; i++) {
            if (!d->targets) {
                int ok = pred[i] == d->labels[s + i];
                hits += ok, pos++, exact += ok, sum_acc += ok, sum_acc2 += ok, counted++;
                continue;
            }
            int64_t h = 0, k = 0;
            for (int64_t t = 0; t < N; t++) {
                int32_t want = task_targets(d, s + i)[t];
                if (want == TASK_IGNORE)
                    continue;
                k++, h += pred[i * N + t] == want;
            }
            if (!k)
                continue;
            double a = (double)h / (double)k;
            hits += h, pos += k, exact += h == k, sum_acc += a, sum_acc2 += a * a, counted++;
        }
        if (answers && (rc = nn_generate_batch(m, d, &bb, s, real, pred, gen, &r->answer_forwards)) != 0)
            break;
    }
    if (!rc && counted) {
        r->accuracy = sum_acc / (double)counted, r->pooled = (double)hits / (double)pos;
        r->exact = (double)exact / (double)counted;
        r->examples = counted, r->positions = pos, r->loss = loss_sum / (double)batches;
        r->has_ponder = m->cfg.halting != NN_HALTING_NONE, r->ponder_steps = ponder_sum / (double)batches;
        if (!d->targets) /* classification: Wilson over the examples */
            task_wilson(hits, counted, TASK_Z95, &r->ci_low, &r->ci_high);
        else
            task_normal_interval(sum_acc, sum_acc2, counted, TASK_Z95, &r->ci_low, &r->ci_high);
    }
    task_answer_summary as;
    if (!rc && answers && !(rc = task_answer_summarize(d, gen, n, &as))) {
        r->has_answer = 1, r->answer = as.mean, r->answer_lo = as.ci_low, r->answer_hi = as.ci_high;
        r->answer_forwards += batches; /* the teacher-forced forwards decoding began from */
    }
    free(gen);
    free(pred);
    nn_batch_buf_free(&bb);
    return rc;
}

/* The example of the g-th draw: epoch g / n in a seeded order. */
typedef struct {
    int64_t n, epoch;
    int64_t *perm;
    uint64_t seed;
} sampler;

static int64_t sample(sampler *s, int64_t g)
{
    int64_t e = g / s->n;
    if (e != s->epoch) {
        attn_rng r;
        attn_rng_seed_item(&r, s->seed, 0x7261696eull, (uint64_t)e);
        for (int64_t i = 0; i < s->n; i++)
            s->perm[i] = i;
        for (int64_t i = s->n - 1; i > 0; i--) {
            int64_t j = (int64_t)attn_rng_uint_below(&r, (uint64_t)i + 1), t = s->perm[i];
            s->perm[i] = s->perm[j], s->perm[j] = t;
        }
        s->epoch = e;
    }
    return s->perm[g % s->n];
}

/* AdamW ranges: every parameter tensor, decayed or not. */
static int decay_ranges(const nn_model *m, optim_range **out, int *n)
{
    int k = nn_model_params(m, NULL, 0);
    nn_param_info *info = malloc(sizeof *info * (size_t)k);
    optim_range *r = malloc(sizeof *r * (size_t)(2 * k + 1));
    if (!info || !r) {
        free(info), free(r);
        return attn_fail(ATTN_ENOMEM, "training: out of memory");
    }
    nn_model_params(m, info, k);
    /* ranges must tile [0, n_params) in order: fill the alignment gaps, undecayed */
    int c = 0;
    size_t at = 0;
    for (int i = 0; i < k; i++) {
        if (info[i].offset > at)
            r[c++] = (optim_range){.offset = at, .count = info[i].offset - at, .decay = 0};
        r[c++] = (optim_range){.offset = info[i].offset, .count = info[i].count, .decay = info[i].decay};
        at = info[i].offset + info[i].count;
    }
    if (at < m->n_params)
        r[c++] = (optim_range){.offset = at, .count = m->n_params - at, .decay = 0};
    free(info);
    *out = r, *n = c;
    return 0;
}

/* Wall time of this call and the estimate to the last step, from the pace of
 * the steps this call made (a resumed run's earlier steps took other time). */
static void pace(const nn_train_cfg *c, nn_eval_point *pt, double elapsed, int64_t done_here)
{
    pt->elapsed_s = elapsed;
    pt->eta_s = done_here ? elapsed / (double)done_here * (double)(c->steps - pt->step) : 0;
}

static optim_schedule schedule_of(const nn_train_cfg *c)
{
    return (optim_schedule){.kind = c->sched, .peak_lr = c->lr, .warmup_steps = c->warmup, .total_steps = c->steps,
                            .min_lr_ratio = c->min_lr_ratio};
}

void nn_trainer_fini(nn_trainer *t)
{
    optim_fini(&t->opt);
    free(t->ranges), free(t->best);
    memset(t, 0, sizeof *t);
}

int nn_trainer_init(nn_trainer *t, nn_model *m, const task_data *train, const task_data *valid, const nn_train_cfg *c)
{
    memset(t, 0, sizeof *t);
    t->m = m, t->train = train, t->valid = valid, t->cfg = *c, t->st.best = -1;
    int64_t B = c->batch, N = train->len;
    if (c->steps < 1 || B < 1 || train->n < 1)
        return attn_fail(ATTN_EINVAL, "training: expected steps >= 1, batch >= 1 and a non-empty train split");
    if (valid && valid->len != N)
        return attn_fail(ATTN_EINVAL, "training: train and valid sequences differ in length (%lld, %lld)",
                         (long long)N, (long long)valid->len);
    optim_schedule sched = schedule_of(c);
    int rc = optim_schedule_check(&sched);
    t->rows = nn_rows_max(train, B);
    if (valid && nn_rows_max(valid, B) > t->rows)
        t->rows = nn_rows_max(valid, B);
    if (!rc)
        rc = nn_model_plan(m, B, N, t->rows, c->threads);
    if (!rc && !(rc = decay_ranges(m, &t->ranges, &t->nranges))) {
        optim_config oc = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = (float)c->weight_decay,
                           .threads = c->threads};
        rc = optim_init(&t->opt, m->n_params, &oc, t->ranges, t->nranges);
    }
    if (!rc && c->patience > 0 && !(t->best = malloc(sizeof *t->best * m->n_params)))
        rc = attn_fail(ATTN_ENOMEM, "training: cannot keep a copy of %zu parameters", m->n_params);
    if (rc)
        nn_trainer_fini(t);
    return rc;
}

void nn_trainer_rng(const nn_trainer *t, attn_rng *r)
{
    int64_t accum = t->cfg.accum > 0 ? t->cfg.accum : 1;
    int64_t next = t->st.step * accum * t->cfg.batch; /* the draw index of the next batch's first example */
    attn_rng_seed_item(r, t->cfg.seed, 0x7261696eull, (uint64_t)(next / t->train->n));
}

/* After an evaluation of weights at step pt->step: the best copy and the
 * patience counter (earliest best on ties). */
static void track_best(nn_trainer *t, const nn_eval_point *pt)
{
    nn_train_state *st = &t->st;
    if (nn_eval_headline(&pt->valid) > st->best) {
        st->best = nn_eval_headline(&pt->valid), st->best_step = pt->step, st->stale = 0;
        if (t->best)
            memcpy(t->best, t->m->params, sizeof *t->best * t->m->n_params);
    } else if (t->cfg.patience > 0 && ++st->stale >= t->cfg.patience) {
        st->stopped = 1; /* early stop */
    }
}

int nn_trainer_run(nn_trainer *t, nn_eval_cb on_eval, nn_save_cb on_save, void *ud)
{
    const nn_train_cfg *c = &t->cfg;
    const task_data *train = t->train, *valid = t->valid;
    nn_model *m = t->m;
    int64_t B = c->batch, N = train->len, accum = c->accum > 0 ? c->accum : 1;
    optim_schedule sched = schedule_of(c);
    int rc = nn_model_plan(m, B, N, t->rows, c->threads);
    nn_batch_buf bb;
    sampler smp = {.n = train->n, .epoch = -1, .seed = c->seed};
    smp.perm = malloc(sizeof *smp.perm * (size_t)train->n);
    if (!rc)
        rc = smp.perm ? nn_batch_buf_alloc(&bb, train, B) : attn_fail(ATTN_ENOMEM, "training: out of memory");
    else
        memset(&bb, 0, sizeof bb);
    double t0 = now_s(), loss_acc = 0;
    int64_t since = 0, done_here = 0;
    nn_train_state *st = &t->st;
    while (!rc && !st->stopped && st->step < c->steps) {
        if (c->halt_after > 0 && done_here == c->halt_after) {
            rc = attn_fail(ATTN_EIO, "training: halted after %lld steps of this call, at step %lld (halt_after: "
                           "a simulated crash)", (long long)done_here, (long long)st->step);
            break;
        }
        int64_t step = st->step + 1;
        double ts = now_s();
        optim_grad_zero(m->grads, m->n_params, c->threads);
        for (int64_t a = 0; !rc && a < accum; a++) {
            for (int64_t i = 0; i < B; i++)
                nn_batch_buf_put(&bb, train, i, sample(&smp, ((step - 1) * accum + a) * B + i));
            double loss;
            int64_t correct, scored;
            uint64_t key = (uint64_t)step * (uint64_t)accum + (uint64_t)a;
            if ((rc = nn_model_forward(m, &bb.b, 1, key, &loss, &correct, &scored, NULL)) ||
                (rc = nn_model_backward(m, &bb.b, key, 1.0f / (float)accum)))
                break;
            loss_acc += loss / (double)accum;
            st->tokens += B * N * (train->tokens2 ? 2 : 1);
        }
        if (rc)
            break;
        double norm;
        if (c->clip > 0 && (rc = optim_clip_grad_norm(&t->opt, m->grads, c->clip, &norm)) != 0)
            break;
        if ((rc = optim_step(&t->opt, m->params, m->grads, (float)optim_lr_at(&sched, step - 1))) != 0)
            break;
        st->step = step, st->train_time_s += now_s() - ts;
        since++, done_here++;
        if (step % (c->eval_every > 0 ? c->eval_every : c->steps) && step != c->steps)
            continue;
        double tt = st->train_time_s;
        nn_eval_point pt = {.step = step, .train_loss = loss_acc / (double)since, .train_time_s = tt,
                            .tokens_per_s = (double)st->tokens / (tt > 0 ? tt : 1)};
        if (valid && (rc = nn_evaluate(m, valid, c->eval_n, B, c->threads, &pt.valid)) != 0)
            break;
        if (valid && (rc = nn_model_plan(m, B, N, t->rows, c->threads)) != 0) /* evaluation may have re-planned */
            break;
        pt.peak_rss_bytes = rss_peak_bytes();
        loss_acc = 0, since = 0;
        pace(c, &pt, now_s() - t0, done_here);
        if (on_eval && (rc = on_eval(&pt, ud)) != 0)
            break;
        track_best(t, &pt);
        if (on_save && (rc = on_save(t, ud)) != 0)
            break;
    }
    free(smp.perm);
    nn_batch_buf_free(&bb);
    return rc;
}

int nn_train(nn_model *m, const task_data *train, const task_data *valid, const nn_train_cfg *c, nn_eval_cb cb,
             void *ud, int64_t *best_step)
{
    nn_trainer t;
    *best_step = 0;
    int rc = nn_trainer_init(&t, m, train, valid, c);
    if (rc)
        return rc;
    rc = nn_trainer_run(&t, cb, NULL, ud);
    *best_step = t.st.best_step;
    nn_trainer_fini(&t);
    return rc;
}

/* ---------------------------------------------------------------- checkpoints */

int nn_ckpt_tensors(const nn_model *m, ckpt_tensor **t, nn_param_info **info, int *n)
{
    *n = nn_model_params(m, NULL, 0);
    *info = malloc(sizeof **info * (size_t)*n);
    *t = malloc(sizeof **t * (size_t)*n);
    if (!*info || !*t) {
        free(*info), free(*t);
        *info = NULL, *t = NULL;
        return attn_fail(ATTN_ENOMEM, "checkpoint: out of memory");
    }
    nn_model_params(m, *info, *n);
    for (int i = 0; i < *n; i++)
        (*t)[i] = (ckpt_tensor){.name = (*info)[i].name, .rank = 2, .dims = {(*info)[i].rows, (*info)[i].cols},
                                .offset = (*info)[i].offset};
    return 0;
}

/* The counters of nn_train_state as JSON numbers: integers below 2^53 and
 * doubles, both of which cJSON prints so that they read back exactly. */
#define STATE_FIELDS(X)                                                                                  \
    X(step, 0) X(best_step, 0) X(stale, 0) X(stopped, 0) X(best, 1) X(train_time_s, 1) X(tokens, 0)

static cJSON *state_json(const nn_train_state *st)
{
    cJSON *o = cJSON_CreateObject();
#define PUT(f, dbl) cJSON_AddNumberToObject(o, #f, (double)st->f);
    STATE_FIELDS(PUT)
#undef PUT
    return o;
}

static int state_from_json(const char *path, const cJSON *o, nn_train_state *st)
{
    const cJSON *x;
#define GET(f, dbl)                                                                                     \
    x = cJSON_GetObjectItemCaseSensitive(o, #f);                                                       \
    if (!cJSON_IsNumber(x) || (!(dbl) && (x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble)))) \
        return attn_fail(ATTN_EINVAL, "%s: state.%s: expected %s", path, #f, (dbl) ? "a number" : "an integer >= 0"); \
    st->f = (__typeof__(st->f))x->valuedouble;
    STATE_FIELDS(GET)
#undef GET
    return 0;
}

int nn_trainer_save(nn_trainer *t, const char *path, const char *run_json)
{
    cJSON *o = cJSON_Parse(run_json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return attn_fail(ATTN_EINVAL, "%s: expected the run config as a JSON object", path);
    }
    cJSON_AddItemToObject(o, "state", state_json(&t->st));
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n = 0, rc = json ? nn_ckpt_tensors(t->m, &tens, &info, &n) : attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
    ckpt_train tr = {.step = t->st.step};
    nn_trainer_rng(t, &tr.rng);
    ckpt_state s = {.tensors = tens, .ntensors = n, .params = t->m->params, .nparams = t->m->n_params, .opt = &t->opt,
                    .train = &tr, .best = t->best};
    if (!rc)
        rc = ckpt_save(path, json, &s);
    free(json), free(tens), free(info);
    return rc;
}

int nn_trainer_load(nn_trainer *t, const char *path, char **run_json)
{
    char *text = NULL;
    unsigned flags = 0;
    nn_train_state st = {0};
    int rc = ckpt_inspect(path, &text, NULL, &flags);
    unsigned want = CKPT_HAS_OPTIM | CKPT_HAS_TRAIN | (t->best ? CKPT_HAS_BEST : 0);
    if (!rc && flags != want)
        rc = attn_fail(ATTN_EINVAL, "%s: expected a resumable checkpoint (flags 0x%x: AdamW state, step%s), found "
                       "flags 0x%x", path, want, t->best ? ", best weights" : "", flags);
    cJSON *o = rc ? NULL : cJSON_Parse(text);
    if (!rc)
        rc = state_from_json(path, cJSON_GetObjectItemCaseSensitive(o, "state"), &st);
    cJSON_Delete(o);
    if (!rc && (st.step > t->cfg.steps || st.best_step > st.step))
        rc = attn_fail(ATTN_EINVAL, "%s: expected step <= %lld and best_step <= step, found step %lld, best_step %lld",
                       path, (long long)t->cfg.steps, (long long)st.step, (long long)st.best_step);
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n = 0;
    ckpt_train tr;
    if (!rc && !(rc = nn_ckpt_tensors(t->m, &tens, &info, &n))) {
        ckpt_state s = {.tensors = tens, .ntensors = n, .params = t->m->params, .nparams = t->m->n_params,
                        .opt = &t->opt, .train = &tr, .best = t->best};
        rc = ckpt_load(path, &s);
    }
    free(tens), free(info);
    if (!rc && (tr.step != st.step || t->opt.step != st.step))
        rc = attn_fail(ATTN_EINVAL, "%s: expected one step, found training step %lld, AdamW step %lld, state %lld", path,
                       (long long)tr.step, (long long)t->opt.step, (long long)st.step);
    if (!rc) {
        t->st = st;
        attn_rng want_rng;
        nn_trainer_rng(t, &want_rng);
        if (memcmp(want_rng.s, tr.rng.s, sizeof tr.rng.s))
            rc = attn_fail(ATTN_EINVAL, "%s: the data-order RNG at step %lld differs from this run's (another seed "
                           "or batch layout)", path, (long long)st.step);
    }
    if (run_json && !rc)
        *run_json = text;
    else
        free(text);
    return rc;
}
