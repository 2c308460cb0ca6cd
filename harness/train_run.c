/* Training runs: data, model, loop, rows, checkpoints (train_run.h). */
#include "train_run.h"

#include "checkpoint.h"
#include "csvw.h"
#include "model_json.h"
#include "rss.h"
#include "sysinfo.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attn_train_run_defaults(attn_train_run *r)
{
    memset(r, 0, sizeof *r);
    r->data_seed = 1, r->train_n = 2000, r->valid_n = 256, r->test_n = 512;
    nn_model_cfg *m = &r->model;
    m->layers = 2, m->d_model = 64, m->heads = 2, m->mlp = 128, m->loops = 1, m->n_kernels = 1;
    strcpy(m->kernels[0], "flash");
    strcpy(m->pos, "learned");
    strcpy(m->pool, "cls");
    nn_train_cfg *t = &r->train;
    *t = (nn_train_cfg){.steps = 200, .batch = 16, .accum = 1, .eval_every = 50, .warmup = 10, .lr = 1e-3,
                        .min_lr_ratio = 0.1, .weight_decay = 0.1, .clip = 1.0, .sched = OPTIM_SCHED_COSINE,
                        .seed = 1, .threads = 1, .progress = 1};
}

/* ---------------------------------------------------------------- rows */

typedef struct {
    const attn_train_run *r;
    const task_def *task;
    const task_data *data;
    const nn_model *model;
    csvw w;
    int open;
} row_sink;

static void params_text(const attn_params *p, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < p->n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", i ? ";" : "", p->key[i], p->val[i]);
}

/* Identity and settings of a row; step and split make each evaluation its own job. */
static void row_identity(const row_sink *s, attn_row *row, int64_t step, const char *split)
{
    const attn_train_run *r = s->r;
    const nn_model_cfg *m = &r->model;
    char model[160], kernels[160] = "", tp[96], params[ATTN_CELL_MAX];
    nn_model_describe(m, model, sizeof model);
    for (int i = 0; i < m->n_kernels; i++)
        snprintf(kernels + strlen(kernels), sizeof kernels - strlen(kernels), "%s%s", i ? "+" : "", m->kernels[i]);
    params_text(&r->task_params, tp, sizeof tp);
    snprintf(params, sizeof params, "%s%slr=%g;wd=%g;steps=%lld;n=%lld;step=%lld;split=%s", tp, tp[0] ? ";" : "",
             r->train.lr, r->train.weight_decay, (long long)r->train.steps, (long long)r->train_n, (long long)step,
             split);
    attn_row_init(row);
    attn_row_set(row, ATTN_COL_RUN_ID, "%s", attn_run_id());
    attn_utc_iso8601(row->cell[ATTN_COL_UTC], ATTN_CELL_MAX);
    attn_row_set(row, ATTN_COL_GIT_SHA, "%s", attn_git_sha());
    attn_row_set(row, ATTN_COL_CPU, "%s", attn_sysinfo_cpu());
    attn_row_set(row, ATTN_COL_THREADS, "%d", r->train.threads);
    attn_row_set(row, ATTN_COL_SUITE, "%s", s->task->suite);
    attn_row_set(row, ATTN_COL_TASK, "%s", r->task);
    attn_row_set(row, ATTN_COL_KERNEL, "%s", kernels);
    attn_row_set(row, ATTN_COL_MODEL, "%s", model);
    attn_row_set(row, ATTN_COL_MASK, "%s", m->causal ? "causal" : "full");
    attn_row_set(row, ATTN_COL_PASS, "train");
    attn_row_set(row, ATTN_COL_DTYPE, "fp32");
    attn_row_set(row, ATTN_COL_B, "%lld", (long long)r->train.batch);
    attn_row_set(row, ATTN_COL_H, "%lld", (long long)m->heads);
    attn_row_set(row, ATTN_COL_H_KV, "%lld", (long long)(m->heads_kv ? m->heads_kv : m->heads));
    attn_row_set(row, ATTN_COL_N, "%lld", (long long)s->data->len);
    attn_row_set(row, ATTN_COL_N_KV, "%lld", (long long)s->data->len);
    attn_row_set(row, ATTN_COL_D, "%lld", (long long)(m->d_model / m->heads));
    attn_row_set(row, ATTN_COL_DV, "%lld", (long long)(m->d_model / m->heads));
    attn_row_set(row, ATTN_COL_PARAMS, "%s", params);
    attn_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)r->train.seed);
    attn_row_set(row, ATTN_COL_DATA_SOURCE, "%s", s->data->data_source);
    attn_row_set(row, ATTN_COL_STATE_BYTES, "%zu", (size_t)0);
    attn_row_set(row, ATTN_COL_PAPI_STATUS, "NA:not measured in training rows");
    char id[17];
    attn_row_job_id(row, id);
    attn_row_set(row, ATTN_COL_JOB_ID, "%s", id);
}

static int write_eval_row(row_sink *s, const char *split, int64_t step, const nn_eval_result *e, double train_time,
                          double tokens_per_s, size_t rss)
{
    attn_row row;
    row_identity(s, &row, step, split);
    /* state: what a causal stream of this model keeps per layer (recall vs state size) */
    size_t state = 0;
    for (int64_t l = 0; l < s->model->cfg.layers; l++) {
        const nn_attn *a = &s->model->blk[l].attn;
        if (a->cfg.kernel->state_bytes) {
            attn_args sa = a->ctx.args;
            sa.B = 1; /* per sequence */
            state += a->cfg.kernel->state_bytes(&sa);
        }
    }
    attn_row_set(&row, ATTN_COL_STATE_BYTES, "%zu", state);
    attn_row_set(&row, ATTN_COL_METRIC, "accuracy");
    attn_row_set(&row, ATTN_COL_VALUE, "%.6f", e->accuracy);
    attn_row_set(&row, ATTN_COL_CI_LOW, "%.6f", e->ci_low);
    attn_row_set(&row, ATTN_COL_CI_HIGH, "%.6f", e->ci_high);
    attn_row_set(&row, ATTN_COL_TRAIN_STEPS, "%lld", (long long)step);
    if (train_time > 0) { /* evaluation rows only: test rows leave the training columns empty */
        attn_row_set(&row, ATTN_COL_TRAIN_TIME_S, "%.3f", train_time);
        attn_row_set(&row, ATTN_COL_TOKENS_PER_S, "%.1f", tokens_per_s);
        attn_row_set(&row, ATTN_COL_TIME_MS_MEDIAN, "%.4g", 1e3 * train_time / (double)step);
    }
    attn_row_set(&row, ATTN_COL_PEAK_RSS_BYTES, "%zu", rss);
    attn_row_set(&row, ATTN_COL_STATUS, "ok");
    if (!s->open) {
        char path[1100];
        if (s->r->out)
            snprintf(path, sizeof path, "%s", s->r->out);
        else
            snprintf(path, sizeof path, "results/%s.csv", s->task->suite);
        int rc = csvw_open(&s->w, path);
        if (rc)
            return rc;
        s->open = 1;
    }
    return csvw_write(&s->w, &row);
}

static int on_eval(const nn_eval_point *pt, void *ud)
{
    return write_eval_row(ud, "valid", pt->step, &pt->valid, pt->train_time_s, pt->tokens_per_s, pt->peak_rss_bytes);
}

/* ---------------------------------------------------------------- data and model */

static int make_split(const attn_train_run *r, const task_def *t, task_split split, int64_t n, task_data *d)
{
    return t->make(&r->task_params, split, r->data_seed, n, r->data_dir, d);
}

/* Fills the task-dependent fields of the model config from the data. */
static int fit_model_to(nn_model_cfg *m, const task_data *d, int64_t len)
{
    m->vocab = d->vocab, m->n_classes = d->n_classes, m->max_len = len;
    m->head = d->kind == TASK_LM ? NN_HEAD_LM : d->kind == TASK_PAIR ? NN_HEAD_TWOTOWER : NN_HEAD_CLASSIFY;
    if (m->head == NN_HEAD_LM)
        m->causal = 1;
    if (m->head == NN_HEAD_TWOTOWER && m->tower_mlp < 2)
        m->tower_mlp = m->mlp >= 2 ? m->mlp : 2 * m->d_model;
    if (!m->variant[0])
        snprintf(m->variant, sizeof m->variant, "%s",
                 m->head == NN_HEAD_LM ? "lm" : m->head == NN_HEAD_TWOTOWER ? "twotower" : "encoder");
    const char *want = m->head == NN_HEAD_LM ? "lm" : m->head == NN_HEAD_TWOTOWER ? "twotower" : "encoder";
    if (strcmp(m->variant, want) && strcmp(m->variant, "hybrid") && strcmp(m->variant, "looped"))
        return attn_fail(ATTN_EINVAL, "--model %s: task '%s' needs the %s head (model %s, hybrid or looped)",
                         m->variant, d->name, want, want);
    return 0;
}

static int checkpoint_tensors(const nn_model *m, ckpt_tensor **t, nn_param_info **info, int *n)
{
    *n = nn_model_params(m, NULL, 0);
    *info = malloc(sizeof **info * (size_t)*n);
    *t = malloc(sizeof **t * (size_t)*n);
    if (!*info || !*t)
        return attn_fail(ATTN_ENOMEM, "checkpoint: out of memory");
    nn_model_params(m, *info, *n);
    for (int i = 0; i < *n; i++)
        (*t)[i] = (ckpt_tensor){.name = (*info)[i].name, .rank = 2, .dims = {(*info)[i].rows, (*info)[i].cols},
                                .offset = (*info)[i].offset};
    return 0;
}

static char *run_json(const attn_train_run *r, int64_t len, double test_acc)
{
    cJSON *o = cJSON_CreateObject(), *tp = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "format", "attnbench-train/1");
    cJSON_AddStringToObject(o, "task", r->task);
    for (int i = 0; i < r->task_params.n; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s=%s", r->task_params.key[i], r->task_params.val[i]);
        cJSON_AddItemToArray(tp, cJSON_CreateString(kv));
    }
    cJSON_AddItemToObject(o, "task_params", tp);
    if (r->data_dir)
        cJSON_AddStringToObject(o, "data_dir", r->data_dir);
    cJSON_AddNumberToObject(o, "data_seed", (double)r->data_seed);
    cJSON_AddNumberToObject(o, "seed", (double)r->train.seed);
    cJSON_AddNumberToObject(o, "len", (double)len);
    cJSON_AddNumberToObject(o, "test_n", (double)r->test_n);
    cJSON_AddNumberToObject(o, "batch", (double)r->train.batch);
    cJSON_AddNumberToObject(o, "steps", (double)r->train.steps);
    cJSON_AddNumberToObject(o, "train_n", (double)r->train_n);
    cJSON_AddNumberToObject(o, "lr", r->train.lr);
    cJSON_AddNumberToObject(o, "wd", r->train.weight_decay);
    cJSON_AddNumberToObject(o, "test_accuracy", test_acc);
    cJSON_AddItemToObject(o, "model", nn_model_cfg_to_json(&r->model));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int attn_train_run_exec(const attn_train_run *r, double *test_acc)
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    task_data tr, va, te;
    memset(&va, 0, sizeof va), memset(&te, 0, sizeof te);
    int rc = make_split(r, t, TASK_TRAIN, r->train_n, &tr);
    if (rc)
        return rc;
    if ((rc = make_split(r, t, TASK_VALID, r->valid_n, &va)) || (rc = make_split(r, t, TASK_TEST, r->test_n, &te))) {
        task_data_free(&tr), task_data_free(&va);
        return rc;
    }
    attn_train_run run = *r;
    nn_model m;
    memset(&m, 0, sizeof m);
    if (!(rc = fit_model_to(&run.model, &tr, tr.len)))
        rc = nn_model_init(&m, &run.model, run.train.seed);
    row_sink sink = {.r = &run, .task = t, .data = &tr, .model = &m};
    int64_t best;
    if (!rc) {
        if (run.train.progress)
            fprintf(stderr, "train: %s (%s) on %lld examples of %s [%s], %zu parameters\n", r->task, t->suite,
                    (long long)tr.n, tr.data_source, tr.meta, m.n_params);
        rc = nn_train(&m, &tr, &va, &run.train, on_eval, &sink, &best);
    }
    nn_eval_result e;
    if (!rc && !(rc = nn_evaluate(&m, &te, 0, run.train.batch, run.train.threads, &e))) {
        *test_acc = e.accuracy;
        if (run.train.progress)
            fprintf(stderr, "test: accuracy %.4f [%.4f, %.4f] on %lld examples (%s)\n", e.accuracy, e.ci_low,
                    e.ci_high, (long long)e.examples, te.data_source);
        rc = write_eval_row(&sink, "test", run.train.steps, &e, 0, 0, attn_rss_peak_bytes());
    }
    if (!rc && r->checkpoint) {
        ckpt_tensor *tens = NULL;
        nn_param_info *info = NULL;
        int n;
        char *json = run_json(&run, tr.len, *test_acc);
        if (!(rc = checkpoint_tensors(&m, &tens, &info, &n))) {
            ckpt_state st = {.tensors = tens, .ntensors = n, .params = m.params, .nparams = m.n_params};
            rc = ckpt_save(r->checkpoint, json, &st);
        }
        free(json), free(tens), free(info);
    }
    if (sink.open)
        csvw_close(&sink.w);
    nn_model_free(&m);
    task_data_free(&tr), task_data_free(&va), task_data_free(&te);
    return rc;
}

int attn_train_run_test_id(const attn_train_run *r, char id[17])
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    task_data te;
    int rc = make_split(r, t, TASK_TEST, r->test_n, &te);
    if (rc)
        return rc;
    attn_train_run run = *r;
    if (!(rc = fit_model_to(&run.model, &te, te.len))) {
        row_sink sink = {.r = &run, .task = t, .data = &te};
        attn_row row;
        row_identity(&sink, &row, run.train.steps, "test");
        memcpy(id, row.cell[ATTN_COL_JOB_ID], 17);
    }
    task_data_free(&te);
    return rc;
}

/* ---------------------------------------------------------------- eval */

static int json_run(const char *path, const char *text, attn_train_run *r, int64_t *len, double *logged)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        return attn_fail(ATTN_EINVAL, "%s: config: not JSON", path);
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(o, "task"), *tp = cJSON_GetObjectItemCaseSensitive(o, "task_params"), *x;
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(o, "data_dir");
    int rc = cJSON_IsString(task) && strlen(task->valuestring) < sizeof r->task && cJSON_IsArray(tp)
                 ? 0 : attn_fail(ATTN_EINVAL, "%s: config: expected \"task\" and \"task_params\"", path);
    if (!rc)
        strcpy(r->task, task->valuestring);
    cJSON_ArrayForEach(x, tp)
    {
        if (!rc)
            rc = cJSON_IsString(x) ? attn_params_add(&r->task_params, x->valuestring)
                                   : attn_fail(ATTN_EINVAL, "%s: config: task_params: expected strings", path);
    }
    static char data_dir[1024];
    if (!rc && cJSON_IsString(dd)) {
        snprintf(data_dir, sizeof data_dir, "%s", dd->valuestring);
        r->data_dir = data_dir;
    }
    const char *nums[] = {"data_seed", "seed", "len", "test_n", "batch", "test_accuracy", "steps", "train_n", "lr", "wd"};
    double v[10] = {0};
    for (int i = 0; !rc && i < 10; i++) {
        x = cJSON_GetObjectItemCaseSensitive(o, nums[i]);
        rc = cJSON_IsNumber(x) ? (v[i] = x->valuedouble, 0)
                               : attn_fail(ATTN_EINVAL, "%s: config: %s: expected a number", path, nums[i]);
    }
    if (!rc) {
        r->data_seed = (uint64_t)v[0], r->train.seed = (uint64_t)v[1], *len = (int64_t)v[2];
        r->test_n = (int64_t)v[3], r->train.batch = (int64_t)v[4], *logged = v[5];
        r->train.steps = (int64_t)v[6], r->train_n = (int64_t)v[7], r->train.lr = v[8], r->train.weight_decay = v[9];
        rc = nn_model_cfg_from_json(cJSON_GetObjectItemCaseSensitive(o, "model"), path, &r->model);
    }
    cJSON_Delete(o);
    return rc;
}

int attn_train_eval_checkpoint(const char *path, int64_t test_n, int threads, const char *out, double *test_acc,
                               double *logged)
{
    char *text = NULL;
    size_t nparams;
    unsigned flags;
    int rc = ckpt_inspect(path, &text, &nparams, &flags);
    attn_train_run r;
    attn_train_run_defaults(&r);
    int64_t len = 0;
    if (!rc)
        rc = json_run(path, text, &r, &len, logged);
    free(text);
    if (rc)
        return rc;
    if (test_n > 0)
        r.test_n = test_n;
    r.out = out, r.train.threads = threads;
    const task_def *t = task_find(r.task);
    if (!t)
        return ATTN_EINVAL;
    task_data te;
    if ((rc = make_split(&r, t, TASK_TEST, r.test_n, &te)) != 0)
        return rc;
    nn_model m;
    memset(&m, 0, sizeof m);
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n;
    if (te.len != len)
        rc = attn_fail(ATTN_EINVAL, "%s: the task now makes sequences of %lld tokens, the model was trained on %lld",
                       path, (long long)te.len, (long long)len);
    r.model.eval_only = 1; /* evaluation needs no backward */
    if (!rc && !(rc = nn_model_init(&m, &r.model, 0)) && !(rc = checkpoint_tensors(&m, &tens, &info, &n))) {
        ckpt_state st = {.tensors = tens, .ntensors = n, .params = m.params, .nparams = m.n_params};
        rc = ckpt_load(path, &st);
    }
    nn_eval_result e;
    if (!rc && !(rc = nn_evaluate(&m, &te, 0, r.train.batch, threads, &e))) {
        *test_acc = e.accuracy;
        row_sink sink = {.r = &r, .task = t, .data = &te, .model = &m};
        rc = write_eval_row(&sink, "test-reload", r.train.steps, &e, 0, 0, attn_rss_peak_bytes());
        if (sink.open)
            csvw_close(&sink.w);
    }
    free(tens), free(info);
    nn_model_free(&m);
    task_data_free(&te);
    return rc;
}
