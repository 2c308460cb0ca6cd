/* Training runs: data, model, loop, rows, checkpoints, resume (train_run.h). */
#include "train_run.h"

#include "harness/measure/bench.h"

#include "models/checkpoint.h"
#include "harness/results/csvw.h"
#include "models/model_json.h"
#include "common/rss.h"
#include "harness/measure/sysinfo.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the run as JSON */

/* The run configuration as one JSON object: its unformatted print is the
 * canonical text the job_id hashes, and with "len", "test_accuracy" and the
 * fitted model it is the header of --checkpoint files. */
static cJSON *run_config_json(const train_run_opts *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "attnbench-train/1");
    opt_write_json(train_run_opts_table, r, o);
    cJSON_AddItemToObject(o, "model", nn_model_cfg_to_json(&r->model));
    return o;
}

/* FNV-1a 64-bit (Fowler, Noll, Vo), as harness/results/schema.c hashes identity cells. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* ---------------------------------------------------------------- rows */

typedef struct {
    const train_run_opts *r;
    const task_def *task;
    const task_data *data;
    const nn_model *model;
    const char *config;          /* canonical JSON text of r (run_config_json, unformatted) */
    char path[1100];             /* the results CSV */
    csvw_idset done;             /* job_ids already in it: not written again (resume) */
    int skip_done;
    const char *resume;          /* the resumable checkpoint (NULL: none) */
    char id[17];                 /* the run's job_id (of its test row) */
    char *resume_json;           /* its header: config + "job_id" */
    csvw w;
    int open;
} row_sink;

static void params_text(const param_bag *p, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < p->n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", i ? ";" : "", p->key[i], p->val[i]);
}

/* The mask column: causal or full, or the canonical spec of an evaluation
 * mask (a swapped kernel's, extrapolate.h). */
static void mask_cell(const nn_model_cfg *m, char *buf, size_t n)
{
    attn_mask mk;
    if (m->mask[0] && !attn_mask_parse(m->mask, &mk))
        attn_mask_format(&mk, buf, (int)n);
    else
        snprintf(buf, n, "%s", m->mask[0] ? m->mask : m->causal ? "causal" : "full");
}

/* Identity and settings of a row; step and split make each evaluation its
 * own job. job_id: FNV-1a over the identity cells' own job_id (harness/
 * results/csvw.h: threads, suite .. data_source, with the model as trained and N)
 * followed by the canonical JSON of the whole run configuration, so every
 * setting that can change a result changes it. */
static void row_identity(const row_sink *s, csvw_row *row, int64_t step, const char *split)
{
    const train_run_opts *r = s->r;
    const nn_model_cfg *m = &r->model;
    char model[160], kernels[160] = "", tp[96], params[ATTN_CELL_MAX], mask[128];
    nn_model_describe(m, model, sizeof model);
    mask_cell(m, mask, sizeof mask);
    for (int i = 0; i < m->n_kernels; i++)
        snprintf(kernels + strlen(kernels), sizeof kernels - strlen(kernels), "%s%s", i ? "+" : "", m->kernels[i]);
    params_text(&r->task_params, tp, sizeof tp);
    char padding[32] = ""; /* padded data: whether attention masks the padding */
    if (s->data->pad >= 0)
        snprintf(padding, sizeof padding, ";padding=%s", nn_model_padding(m));
    snprintf(params, sizeof params, "%s%slr=%g;wd=%g;steps=%lld;n=%lld%s;step=%lld;split=%s", tp, tp[0] ? ";" : "",
             r->train.lr, r->train.weight_decay, (long long)r->train.steps, (long long)r->train_n, padding,
             (long long)step, split);
    bench_row_begin(row, r->train.threads, s->task->suite);
    csvw_row_set(row, ATTN_COL_TASK, "%s", r->task);
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", kernels);
    csvw_row_set(row, ATTN_COL_MODEL, "%s", model);
    csvw_row_set(row, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(row, ATTN_COL_PASS, "train");
    csvw_row_set(row, ATTN_COL_DTYPE, "fp32");
    csvw_row_set(row, ATTN_COL_B, "%lld", (long long)r->train.batch);
    csvw_row_set(row, ATTN_COL_H, "%lld", (long long)m->heads);
    csvw_row_set(row, ATTN_COL_H_KV, "%lld", (long long)(m->heads_kv ? m->heads_kv : m->heads));
    csvw_row_set(row, ATTN_COL_N, "%lld", (long long)s->data->len);
    csvw_row_set(row, ATTN_COL_N_KV, "%lld", (long long)s->data->len);
    csvw_row_set(row, ATTN_COL_D, "%lld", (long long)(m->d_model / m->heads));
    csvw_row_set(row, ATTN_COL_DV, "%lld", (long long)(m->d_model / m->heads));
    csvw_row_set(row, ATTN_COL_PARAMS, "%s", params);
    csvw_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)r->train.seed);
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "%s", s->data->data_source);
    csvw_row_set(row, ATTN_COL_STATE_BYTES, "%zu", (size_t)0);
    csvw_row_set(row, ATTN_COL_PAPI_STATUS, "NA:not measured in training rows");
    char cells[17];
    csvw_row_job_id(row, cells);
    uint64_t h = fnv1a(fnv1a(0xcbf29ce484222325ull, cells), s->config);
    csvw_row_set(row, ATTN_COL_JOB_ID, "%016llx", (unsigned long long)h);
}

/* A test row: which weights were evaluated (the best-validation ones with
 * --patience, else the last) and the step they come from. */
typedef struct {
    int64_t weights_step, best_step;
    int best;
} test_info;

static int write_eval_row(row_sink *s, const char *split, int64_t step, const nn_eval_result *e, double train_time,
                          double tokens_per_s, size_t rss, const test_info *ti)
{
    csvw_row row;
    row_identity(s, &row, step, split);
    if (s->skip_done && csvw_idset_contains(&s->done, row.cell[ATTN_COL_JOB_ID]))
        return 0; /* written before the crash this run resumes from */
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
    if (ti) { /* after the job_id: known only once trained */
        char params[ATTN_CELL_MAX];
        memcpy(params, row.cell[ATTN_COL_PARAMS], sizeof params);
        csvw_row_set(&row, ATTN_COL_PARAMS, "%s;best_step=%lld;weights=%s", params, (long long)ti->best_step,
                     ti->best ? "best" : "last");
    }
    csvw_row_set(&row, ATTN_COL_STATE_BYTES, "%zu", state);
    csvw_row_set(&row, ATTN_COL_METRIC, "accuracy");
    csvw_row_set(&row, ATTN_COL_VALUE, "%.6f", e->accuracy);
    csvw_row_set(&row, ATTN_COL_CI_LOW, "%.6f", e->ci_low);
    csvw_row_set(&row, ATTN_COL_CI_HIGH, "%.6f", e->ci_high);
    csvw_row_set(&row, ATTN_COL_TRAIN_STEPS, "%lld", (long long)(ti ? ti->weights_step : step));
    if (train_time > 0) { /* evaluation rows only: test rows leave the training columns empty */
        csvw_row_set(&row, ATTN_COL_TRAIN_TIME_S, "%.3f", train_time);
        csvw_row_set(&row, ATTN_COL_TOKENS_PER_S, "%.1f", tokens_per_s);
        csvw_row_set(&row, ATTN_COL_TIME_MS_MEDIAN, "%.4g", 1e3 * train_time / (double)step);
    }
    csvw_row_set(&row, ATTN_COL_PEAK_RSS_BYTES, "%zu", rss);
    csvw_row_set(&row, ATTN_COL_STATUS, "ok");
    if (!s->open) {
        int rc = csvw_open(&s->w, s->path);
        if (rc)
            return rc;
        s->open = 1;
    }
    return csvw_write(&s->w, &row);
}

static int on_eval(const nn_eval_point *pt, void *ud)
{
    return write_eval_row(ud, "valid", pt->step, &pt->valid, pt->train_time_s, pt->tokens_per_s, pt->peak_rss_bytes,
                          NULL);
}

/* After the evaluation's row: the resumable checkpoint (row first, so a
 * checkpoint never gets ahead of the CSV; a row written before a crash that
 * lost its checkpoint is recognised by its job_id and not written again). */
static int on_save(nn_trainer *t, void *ud)
{
    row_sink *s = ud;
    return s->resume ? nn_trainer_save(t, s->resume, s->resume_json) : 0;
}

/* ---------------------------------------------------------------- data and model */

static int make_split(const train_run_opts *r, const task_def *t, task_split split, int64_t n, task_data *d)
{
    return t->make(&r->task_params, split, r->data_seed, n, train_run_data_dir(r), d);
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
    nn_variant want = m->head == NN_HEAD_LM ? NN_VARIANT_LM : m->head == NN_HEAD_TWOTOWER ? NN_VARIANT_TWOTOWER
                                                                                  : NN_VARIANT_ENCODER;
    if (m->variant == NN_VARIANT_TASK)
        m->variant = want;
    if (m->variant != want && m->variant != NN_VARIANT_HYBRID && m->variant != NN_VARIANT_LOOPED)
        return attn_fail(ATTN_EINVAL, "--model %s: task '%s' needs the %s head (model %s, hybrid or looped)",
                         nn_variant_names[m->variant], d->name, nn_variant_names[want], nn_variant_names[want]);
    return 0;
}

/* The --checkpoint header: the run with its fitted model, the sequence
 * length and the test accuracy logged now. */
static char *checkpoint_json(const train_run_opts *fitted, int64_t len, double test_acc)
{
    cJSON *o = run_config_json(fitted);
    cJSON_AddNumberToObject(o, "len", (double)len);
    cJSON_AddNumberToObject(o, "test_accuracy", test_acc);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *print_config(const train_run_opts *r)
{
    cJSON *o = run_config_json(r);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Sets up a sink for run r (as given, before fitting) over split data d:
 * its canonical config text and the results path. */
static int sink_init(row_sink *s, const train_run_opts *r, const train_run_opts *fitted, const task_def *t,
                     const task_data *d)
{
    memset(s, 0, sizeof *s);
    csvw_idset_init(&s->done);
    s->r = fitted, s->task = t, s->data = d;
    train_run_results_path(r, s->path, sizeof s->path);
    s->config = print_config(r);
    return s->config ? 0 : attn_fail(ATTN_ENOMEM, "training: out of memory");
}

static void sink_fini(row_sink *s)
{
    if (s->open)
        csvw_close(&s->w);
    csvw_idset_free(&s->done);
    free((void *)s->config), free(s->resume_json);
}

static void test_row_id(row_sink *s, char id[17])
{
    csvw_row row;
    row_identity(s, &row, s->r->train.steps, "test");
    memcpy(id, row.cell[ATTN_COL_JOB_ID], 17);
}

/* results/<suite>.csv -> results/.train-<job_id>.ckpt */
static void resume_path(const char *csv, const char *id, char *out, size_t n)
{
    const char *slash = strrchr(csv, '/');
    int dir = slash ? (int)(slash - csv + 1) : 0;
    snprintf(out, n, "%.*s.train-%s.ckpt", dir, csv, id);
}

/* Trains (resuming from the sink's checkpoint when it exists), then evaluates
 * the test split with the weights the run selects. */
static int train_and_test(row_sink *sink, nn_model *m, const task_data *tr, const task_data *va,
                          const task_data *te, nn_eval_result *e, test_info *ti)
{
    const train_run_opts *run = sink->r;
    nn_trainer t;
    int rc = nn_trainer_init(&t, m, tr, va, &run->train);
    if (rc)
        return rc;
    if (sink->resume && access(sink->resume, F_OK) == 0) {
        char *json = NULL;
        cJSON *o = NULL;
        const cJSON *jid = NULL;
        if (!(rc = nn_trainer_load(&t, sink->resume, &json)) && (o = cJSON_Parse(json)))
            jid = cJSON_GetObjectItemCaseSensitive(o, "job_id");
        if (!rc && !(cJSON_IsString(jid) && !strcmp(jid->valuestring, sink->id)))
            rc = attn_fail(ATTN_EINVAL, "%s: expected job_id %s, found %s", sink->resume, sink->id,
                           cJSON_IsString(jid) ? jid->valuestring : "none");
        cJSON_Delete(o);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", attn_last_error());
            rc = attn_fail(rc, "%s (remove it to train this run from the start)", msg);
        } else if (run->train.progress) {
            fprintf(stderr, "train: resuming at step %lld of %lld from %s\n", (long long)t.st.step,
                    (long long)run->train.steps, sink->resume);
        }
        free(json);
    }
    if (!rc)
        rc = nn_trainer_run(&t, on_eval, on_save, sink);
    if (!rc) {
        ti->best = t.best && t.st.best_step > 0, ti->best_step = t.st.best_step;
        ti->weights_step = ti->best ? t.st.best_step : t.st.step;
        if (ti->best) /* early stopping selects the best-validation weights */
            memcpy(m->params, t.best, sizeof *t.best * m->n_params);
        rc = nn_evaluate(m, te, 0, run->train.batch, run->train.threads, e);
    }
    nn_trainer_fini(&t);
    return rc;
}

static int save_weights(const char *path, const nn_model *m, const char *json)
{
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n, rc = json ? nn_ckpt_tensors(m, &tens, &info, &n) : attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
    if (!rc) {
        ckpt_state st = {.tensors = tens, .ntensors = n, .params = m->params, .nparams = m->n_params};
        rc = ckpt_save(path, json, &st);
    }
    free(tens), free(info);
    return rc;
}

int train_run_exec(const train_run_opts *r, double *test_acc)
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    /* The rows' peak_rss_bytes is this training's peak (data, model,
     * optimiser state, activations), not the process's: a sweep runs many
     * trainings in one process, and without the reset every row after the
     * largest one repeated its peak (the LRA bubble chart then gave every
     * kernel the same memory). Where the reset is unsupported (rss.h) the
     * value stays the process peak so far. */
    rss_reset_peak();
    task_data tr, va, te;
    memset(&va, 0, sizeof va), memset(&te, 0, sizeof te);
    int rc = make_split(r, t, TASK_TRAIN, r->train_n, &tr);
    if (rc)
        return rc;
    if ((rc = make_split(r, t, TASK_VALID, r->valid_n, &va)) || (rc = make_split(r, t, TASK_TEST, r->test_n, &te))) {
        task_data_free(&tr), task_data_free(&va);
        return rc;
    }
    train_run_opts run = *r;
    nn_model m;
    memset(&m, 0, sizeof m);
    row_sink sink;
    char resume[1200];
    if (!(rc = fit_model_to(&run.model, &tr, tr.len)) && !(rc = sink_init(&sink, r, &run, t, &tr))) {
        sink.model = &m;
        rc = nn_model_init(&m, &run.model, run.train.seed);
    } else {
        memset(&sink, 0, sizeof sink);
    }
    /* A run whose test row is not in the CSV yet is unfinished: it continues
     * from its resumable checkpoint (if any) and skips the rows it wrote. A
     * finished run run again starts afresh and appends a new set of rows. */
    if (!rc) {
        test_row_id(&sink, sink.id);
        resume_path(sink.path, sink.id, resume, sizeof resume);
        cJSON *o = cJSON_Parse(sink.config);
        cJSON_AddStringToObject(o, "job_id", sink.id);
        sink.resume_json = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        sink.resume = resume;
        if (!sink.resume_json)
            rc = attn_fail(ATTN_ENOMEM, "training: out of memory");
    }
    if (!rc) {
        if ((rc = csvw_load_job_ids(sink.path, &sink.done)) > 0)
            rc = 0;
        sink.skip_done = !rc && !csvw_idset_contains(&sink.done, sink.id);
    }
    nn_eval_result e;
    test_info ti = {0};
    if (!rc) {
        if (run.train.progress)
            fprintf(stderr, "train: %s (%s) on %lld examples of %s [%s], %zu parameters\n", r->task, t->suite,
                    (long long)tr.n, tr.data_source, tr.meta, m.n_params);
        rc = train_and_test(&sink, &m, &tr, &va, &te, &e, &ti);
    }
    if (!rc) {
        *test_acc = e.accuracy;
        if (run.train.progress)
            fprintf(stderr, "test: accuracy %.4f [%.4f, %.4f] on %lld examples (%s), weights of step %lld (%s)\n",
                    e.accuracy, e.ci_low, e.ci_high, (long long)e.examples, te.data_source,
                    (long long)ti.weights_step, ti.best ? "best validation" : "last");
    }
    /* --checkpoint before the test row (both atomic): a run whose test row
     * is in the CSV always has its checkpoint, which a resumed sweep reads
     * back for the extrapolation cells still missing */
    if (!rc && r->checkpoint) {
        char *json = checkpoint_json(&run, tr.len, *test_acc);
        rc = save_weights(r->checkpoint, &m, json);
        free(json);
    }
    if (!rc)
        rc = write_eval_row(&sink, "test", run.train.steps, &e, 0, 0, rss_peak_bytes(), &ti);
    if (!rc)
        unlink(resume); /* finished: the test row is in the CSV, the resume state is not needed */
    sink_fini(&sink);
    nn_model_free(&m);
    task_data_free(&tr), task_data_free(&va), task_data_free(&te);
    return rc;
}

/* The run with its model fitted to the test split te (made here; freed on error). */
static int fit_on_test(const train_run_opts *r, const task_def *t, train_run_opts *fitted, task_data *te)
{
    int rc = make_split(r, t, TASK_TEST, r->test_n, te);
    if (rc)
        return rc;
    *fitted = *r;
    if ((rc = fit_model_to(&fitted->model, te, te->len)))
        task_data_free(te);
    return rc;
}

int train_run_test_id(const train_run_opts *r, char id[17])
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    task_data te;
    train_run_opts run;
    row_sink sink;
    int rc = fit_on_test(r, t, &run, &te);
    if (rc)
        return rc;
    if (!(rc = sink_init(&sink, r, &run, t, &te))) {
        test_row_id(&sink, id);
        sink_fini(&sink);
    }
    task_data_free(&te);
    return rc;
}

int train_run_fitted(const train_run_opts *r, train_run_opts *fitted, int64_t *len)
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    task_data te;
    int rc = fit_on_test(r, t, fitted, &te);
    if (!rc) {
        *len = te.len;
        task_data_free(&te);
    }
    return rc;
}

/* ---------------------------------------------------------------- eval */

/* Reads a --checkpoint header back into r (settings absent from older files
 * keep their defaults). */
static int json_run(const char *path, const char *text, train_run_opts *r, int64_t *len, double *logged)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        return attn_fail(ATTN_EINVAL, "%s: config: not JSON", path);
    char where[1100];
    snprintf(where, sizeof where, "%s: config", path);
    int rc = opt_read_json(train_run_opts_table, r, o, where);
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(o, "len"), *acc = cJSON_GetObjectItemCaseSensitive(o, "test_accuracy");
    if (!rc && (!cJSON_IsNumber(ln) || !cJSON_IsNumber(acc)))
        rc = attn_fail(ATTN_EINVAL, "%s: config: len, test_accuracy: expected numbers", path);
    if (!rc) {
        *len = (int64_t)ln->valuedouble, *logged = acc->valuedouble;
        rc = nn_model_cfg_from_json(cJSON_GetObjectItemCaseSensitive(o, "model"), path, &r->model);
    }
    cJSON_Delete(o);
    return rc;
}

int train_run_eval_checkpoint(const char *path, int64_t test_n, int threads, const char *out, double *test_acc,
                               double *logged)
{
    train_run_opts r;
    int64_t len = 0;
    int rc = train_run_checkpoint(path, &r, &len, logged);
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
    nn_eval_result e;
    if (te.len != len)
        rc = attn_fail(ATTN_EINVAL, "%s: the task now makes sequences of %lld tokens, the model was trained on %lld",
                       path, (long long)te.len, (long long)len);
    if (!rc && !(rc = train_run_model_load(path, &r.model, &m)) &&
        !(rc = train_run_eval_write(&r, &te, &m, "test-reload", &e)))
        *test_acc = e.accuracy;
    nn_model_free(&m);
    task_data_free(&te);
    return rc;
}

/* ---------------------------------------------------------------- for extrapolate.c */

int train_run_checkpoint(const char *path, train_run_opts *r, int64_t *len, double *logged)
{
    char *text = NULL;
    size_t nparams;
    unsigned flags;
    train_run_defaults(r);
    int rc = ckpt_inspect(path, &text, &nparams, &flags);
    if (!rc)
        rc = json_run(path, text, r, len, logged);
    free(text);
    return rc;
}

int train_run_model_load(const char *path, const nn_model_cfg *cfg, nn_model *m)
{
    nn_model_cfg c = *cfg;
    c.eval_only = 1; /* evaluation needs no backward */
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n;
    memset(m, 0, sizeof *m);
    int rc = nn_model_init(m, &c, 0);
    if (!rc && !(rc = nn_ckpt_tensors(m, &tens, &info, &n))) {
        ckpt_state st = {.tensors = tens, .ntensors = n, .params = m->params, .nparams = m->n_params};
        rc = ckpt_load(path, &st);
    }
    free(tens), free(info);
    return rc;
}

void train_run_results_path(const train_run_opts *r, char *out, size_t n)
{
    const task_def *t = task_find(r->task);
    if (r->out)
        snprintf(out, n, "%s", r->out);
    else
        snprintf(out, n, "results/%s.csv", t ? t->suite : "train");
}

int train_run_eval_row_id(const train_run_opts *r, const task_data *d, const char *split, char id[17])
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    row_sink sink;
    int rc = sink_init(&sink, r, r, t, d);
    if (!rc) {
        csvw_row row;
        row_identity(&sink, &row, r->train.steps, split);
        memcpy(id, row.cell[ATTN_COL_JOB_ID], 17);
        sink_fini(&sink);
    }
    return rc;
}

int train_run_eval_write(const train_run_opts *r, const task_data *d, nn_model *m, const char *split,
                          nn_eval_result *e)
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    row_sink sink;
    /* the row's peak RSS is this evaluation's (with the data and model it
     * holds), not the training's or an earlier cell's before it in a sweep */
    rss_reset_peak();
    int rc = nn_evaluate(m, d, 0, r->train.batch, r->train.threads, e);
    if (!rc && !(rc = sink_init(&sink, r, r, t, d))) {
        sink.model = m;
        rc = write_eval_row(&sink, split, r->train.steps, e, 0, 0, rss_peak_bytes(), NULL);
        sink_fini(&sink);
    }
    return rc;
}
