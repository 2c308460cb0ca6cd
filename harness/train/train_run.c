/* Training runs: data, model, loop, rows, checkpoints, resume (train_run.h). */
#include "train_run.h"

#include "harness/measure/bench.h"

#include "models/checkpoint.h"
#include "harness/results/csvw.h"
#include "models/model_json.h"
#include "common/rss.h"
#include "harness/measure/sysinfo.h"
#include "kernels/core/registry.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the run as JSON */

/* The run configuration as one JSON object: its unformatted print is the
 * canonical text the job_id hashes, and with "len", "test_accuracy",
 * "test_metric" and the
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
    const task_data *valid;      /* the validation split (training only) */
    train_result *res;           /* the run's result, collecting the evaluations (training only) */
    const char *config;          /* canonical JSON text of r (run_config_json, unformatted) */
    char path[1100];             /* the results CSV */
    csvw_idset done;             /* job_ids already in it: not written again (resume) */
    int skip_done;
    const char *resume;          /* the resumable checkpoint (NULL: none) */
    char id[17];                 /* the run's job_id (of its test row) */
    char *resume_json;           /* its header: config + "job_id" */
    int64_t skipped;             /* files the task's loader skipped over the splits read (task_data) */
    csvw w;
    int open;
} row_sink;

static void params_text(const param_bag *p, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < p->n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", i ? ";" : "", p->key[i], p->val[i]);
}

/* The mask column: causal or full, or the canonical spec of the model's mask
 * or of an evaluation mask (a swapped kernel's, extrapolate.h). */
static void mask_cell(const nn_model_cfg *m, char *buf, size_t n)
{
    attn_mask mk = nn_model_mask(m);
    attn_mask_format(&mk, buf, (int)n);
}

/* ";kernel_params=k=v,..": the layer kernels' parameters as given, then every
 * parameter a kernel records with its default (the seed of a random draw,
 * OPT_RECORDED), so runs of two budgets or draws are two settings; "" when
 * there are none. */
static void kernel_params_text(const nn_model_cfg *m, char *buf, size_t n)
{
    const param_bag *p = &m->kparams;
    char items[140] = "";
    size_t at = 0;
    for (int i = 0; i < p->n && at < sizeof items; i++)
        at += (size_t)snprintf(items + at, sizeof items - at, "%s%s=%s", at ? "," : "", p->key[i], p->val[i]);
    for (int l = 0; l < m->n_kernels; l++) {
        int seen = 0; /* a hybrid's repeated kernel is listed once */
        for (int e = 0; e < l; e++)
            seen |= !strcmp(m->kernels[e], m->kernels[l]);
        if (!seen)
            attn_params_recorded_text(attn_find_kernel(m->kernels[l]), p, ",", items, sizeof items);
    }
    attn_clear_error(); /* an unknown kernel is the model's to report */
    snprintf(buf, n, "%s%s", items[0] ? ";kernel_params=" : "", items);
}

/* ";skipped=N" after the params of a run whose loader skipped unreadable
 * files. Added after the job_id is hashed: the count is provenance (what the
 * files on disk allowed), not a setting, and the sweep's resume check, which
 * loads the test split only, must find the test row whatever it says. */
static void note_skipped(csvw_row *row, int64_t skipped)
{
    char params[ATTN_CELL_MAX];
    if (skipped <= 0)
        return;
    memcpy(params, row->cell[ATTN_COL_PARAMS], sizeof params);
    csvw_row_set(row, ATTN_COL_PARAMS, "%s;skipped=%lld", params, (long long)skipped);
}

/* Identity and settings of a row; step and split make each evaluation its
 * own job. job_id: FNV-1a over the identity cells' own job_id (harness/
 * results/csvw.h: threads, suite .. data_source, with the model as trained and N)
 * followed by the canonical JSON of the whole run configuration and the
 * task's every parameter with its default filled in, so every setting that
 * can change a result changes it (a changed default of a task too), and by
 * the metric unless it is plain accuracy. */
static void row_identity(const row_sink *s, csvw_row *row, int64_t step, const char *split, const char *metric)
{
    const train_run_opts *r = s->r;
    const nn_model_cfg *m = &r->model;
    char model[160], kernels[160] = "", tp[96], mask[128];
    nn_model_describe(m, model, sizeof model);
    mask_cell(m, mask, sizeof mask);
    for (int i = 0; i < m->n_kernels; i++)
        snprintf(kernels + strlen(kernels), sizeof kernels - strlen(kernels), "%s%s", i ? "+" : "", m->kernels[i]);
    params_text(&r->task_params, tp, sizeof tp);
    char padding[32] = "", kp[160]; /* padded data: whether attention masks the padding */
    if (s->data->pad >= 0)
        snprintf(padding, sizeof padding, ";padding=%s", nn_model_padding(m));
    kernel_params_text(m, kp, sizeof kp);
    bench_row_begin(row, r->train.threads, s->task->suite);
    csvw_row_set(row, ATTN_COL_TASK, "%s", r->task);
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", kernels);
    csvw_row_set(row, ATTN_COL_MODEL, "%s", model);
    csvw_row_set(row, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(row, ATTN_COL_PASS, "train");
    if (m->attn_dtype != ATTN_DT_FP32) /* the kernels' operands; weights and optimizer fp32 */
        csvw_row_set(row, ATTN_COL_DTYPE, "%s", attn_dtype_names[m->attn_dtype]);
    int64_t head_dim = m->d_model / m->heads;
    bench_row_shape(row, &(bench_shape){r->train.batch, m->heads, m->heads_kv ? m->heads_kv : m->heads, s->data->len,
                                        s->data->len, head_dim, head_dim});
    /* a params cell too long for the schema reads NA:too-long, never a cut value */
    csvw_row_set(row, ATTN_COL_PARAMS, "%s%slr=%g;wd=%g;steps=%lld;n=%lld%s%s;step=%lld;split=%s", tp,
                 tp[0] ? ";" : "", r->train.lr, r->train.weight_decay, (long long)r->train.steps,
                 (long long)r->train_n, padding, kp, (long long)step, split);
    csvw_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)r->train.seed);
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "%s", s->data->data_source);
    csvw_row_set(row, ATTN_COL_STATE_BYTES, "%zu", (size_t)0);
    csvw_row_set(row, ATTN_COL_PAPI_STATUS, "NA:not measured in training rows");
    char cells[17];
    csvw_row_job_id(row, cells);
    char settings[1024]; /* the task's every parameter, defaults included */
    task_settings_text(s->task, &r->task_params, settings, sizeof settings);
    uint64_t h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, cells), s->config), settings);
    if (strcmp(metric, "accuracy")) /* each metric of an evaluation is a row of its own */
        h = fnv1a(h, metric);
    csvw_row_set(row, ATTN_COL_JOB_ID, "%016llx", (unsigned long long)h);
    note_skipped(row, s->skipped);
}

/* The row of one metric of evaluation e, its cells by `fill` (the headline,
 * metric2's, the ponder steps of halting act: train_result.h); 0 when the
 * CSV holds it already (written before the crash this run resumes from).
 * The row's step is the evaluation's during training, else the run's steps
 * (a test row's train_steps cell says which weights it evaluated). */
static int metric_row(row_sink *s, const train_eval_result *e, const char *metric,
                      void (*fill)(const train_eval_result *, csvw_row *), csvw_row *row)
{
    row_identity(s, row, e->kind == TRAIN_EVAL_VALID ? e->step : s->r->train.steps, e->split, metric);
    if (s->skip_done && csvw_idset_contains(&s->done, row->cell[ATTN_COL_JOB_ID]))
        return 0;
    fill(e, row);
    return 1;
}

/* An evaluation's rows, the second metric's (a generated-answer task's
 * token accuracy) and the ponder steps' then the headline's, in one write:
 * all land or none, so a crash never leaves part of an evaluation, whose
 * other part a resumed run (which looks for the headline) would then write
 * a second time. */
static int write_eval_row(row_sink *s, const train_eval_result *e)
{
    csvw_row *rows = malloc(3 * sizeof *rows);
    if (!rows)
        return attn_fail(ATTN_ENOMEM, "%s: no memory for an evaluation's rows", s->path);
    int n = e->metric2 ? metric_row(s, e, e->metric2, train_eval_fill_second, &rows[0]) : 0, rc = 0;
    n += e->has_ponder ? metric_row(s, e, TRAIN_PONDER_METRIC, train_eval_fill_ponder, &rows[n]) : 0;
    n += metric_row(s, e, e->metric, train_eval_fill, &rows[n]);
    if (n && !s->open && !(rc = csvw_open(&s->w, s->path)))
        s->open = 1;
    if (n && !rc)
        rc = csvw_write_rows(&s->w, rows, n);
    free(rows);
    return rc;
}

/* A validation evaluation of the training loop: its result, line and row. */
static int on_eval(const nn_eval_point *pt, void *ud)
{
    row_sink *s = ud;
    train_eval_result e;
    train_eval_begin(&e, TRAIN_EVAL_VALID, "valid", s->model, s->valid);
    train_eval_from_nn(&pt->valid, &e);
    e.step = pt->step, e.peak_rss_bytes = pt->peak_rss_bytes;
    e.progress = (train_progress){.steps = s->r->train.steps, .train_loss = pt->train_loss,
                                  .train_time_s = pt->train_time_s, .tokens_per_s = pt->tokens_per_s,
                                  .elapsed_s = pt->elapsed_s, .eta_s = pt->eta_s};
    if (s->r->train.progress)
        train_eval_print(stderr, &e);
    int rc = train_result_add_eval(s->res, &e);
    return rc ? rc : write_eval_row(s, &e);
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
    int segmented = m->variant == NN_VARIANT_FOLDED || m->variant == NN_VARIANT_HMT;
    if (segmented && want != NN_VARIANT_LM)
        return attn_fail(ATTN_EINVAL, "--model %s: task '%s' needs the %s head; %s is an lm (recall and NIAH "
                         "tasks)", nn_variant_names[m->variant], d->name, nn_variant_names[want],
                         nn_variant_names[m->variant]);
    if (m->variant != want && m->variant != NN_VARIANT_HYBRID && m->variant != NN_VARIANT_LOOPED && !segmented)
        return attn_fail(ATTN_EINVAL, "--model %s: task '%s' needs the %s head (model %s, hybrid, looped, folded or "
                         "hmt)",
                         nn_variant_names[m->variant], d->name, nn_variant_names[want], nn_variant_names[want]);
    return 0;
}

/* The --checkpoint header: the run with its fitted model, the sequence
 * length and the test row's value logged now ("test_accuracy", the
 * headline metric named by "test_metric"). */
static char *checkpoint_json(const train_run_opts *fitted, int64_t len, const train_eval_result *test)
{
    cJSON *o = run_config_json(fitted);
    cJSON_AddNumberToObject(o, "len", (double)len);
    cJSON_AddNumberToObject(o, "test_accuracy", test->value);
    cJSON_AddStringToObject(o, "test_metric", test->metric);
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
    s->r = fitted, s->task = t, s->data = d, s->skipped = d->skipped;
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
    row_identity(s, &row, s->r->train.steps, "test", train_eval_metric(s->data));
    memcpy(id, row.cell[ATTN_COL_JOB_ID], 17);
}

/* results/<suite>.csv -> results/.train-<job_id>.ckpt */
static void resume_path(const char *csv, const char *id, char *out, size_t n)
{
    const char *slash = strrchr(csv, '/');
    int dir = slash ? (int)(slash - csv + 1) : 0;
    snprintf(out, n, "%.*s.train-%s.ckpt", dir, csv, id);
}

/* Continues t from the sink's resumable checkpoint when the file exists (and
 * names this run's job_id). */
static int resume_trainer(const row_sink *sink, nn_trainer *t)
{
    if (!sink->resume || access(sink->resume, F_OK) != 0)
        return 0;
    char *json = NULL;
    cJSON *o = NULL;
    const cJSON *jid = NULL;
    int rc = nn_trainer_load(t, sink->resume, &json);
    if (!rc && (o = cJSON_Parse(json)))
        jid = cJSON_GetObjectItemCaseSensitive(o, "job_id");
    if (!rc && !(cJSON_IsString(jid) && !strcmp(jid->valuestring, sink->id)))
        rc = attn_fail(ATTN_EINVAL, "%s: expected job_id %s, found %s", sink->resume, sink->id,
                       cJSON_IsString(jid) ? jid->valuestring : "none");
    cJSON_Delete(o);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", attn_last_error());
        rc = attn_fail(rc, "%s (remove it to train this run from the start)", msg);
    } else if (sink->r->train.progress) {
        fprintf(stderr, "train: resuming at step %lld of %lld from %s\n", (long long)t->st.step,
                (long long)sink->r->train.steps, sink->resume);
    }
    free(json);
    return rc;
}

/* Trains (resuming when it can), then evaluates the test split with the
 * weights the run selects: res gets the evaluations, the selection and the
 * test (its peak RSS is the caller's, taken when the row is written). */
static int train_and_test(row_sink *sink, nn_model *m, const task_data *tr, const task_data *te, train_result *res)
{
    const train_run_opts *run = sink->r;
    nn_trainer t;
    int rc = nn_trainer_init(&t, m, tr, sink->valid, &run->train);
    if (rc)
        return rc;
    if (!(rc = resume_trainer(sink, &t)))
        rc = nn_trainer_run(&t, on_eval, on_save, sink);
    if (!rc) {
        int best = t.best && t.st.best_step > 0;
        res->best_step = t.st.best_step, res->weights = best ? TRAIN_WEIGHTS_BEST : TRAIN_WEIGHTS_LAST;
        if (best) /* early stopping selects the best-validation weights */
            memcpy(m->params, t.best, sizeof *t.best * m->n_params);
        rc = train_eval_measure(m, te, 0, run->train.batch, run->train.threads, TRAIN_EVAL_TEST, "test", &res->test);
        res->test.step = best ? t.st.best_step : t.st.step;
        res->test.weights = res->weights, res->test.best_step = res->best_step;
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

/* One training run's data, model and rows, as its steps below share them. */
typedef struct {
    const train_run_opts *given;
    train_run_opts run;          /* the model fitted to the data */
    const task_def *task;
    task_data tr, va, te;
    nn_model m;
    row_sink sink;
    char resume[1200];           /* the resumable checkpoint's path */
} run_ctx;

/* The three splits (none on error). */
static int run_data(run_ctx *c)
{
    const train_run_opts *r = c->given;
    int rc = train_run_make_split(r, c->task, TASK_TRAIN, r->train_n, &c->tr);
    if (rc)
        return rc;
    if ((rc = train_run_make_split(r, c->task, TASK_VALID, r->valid_n, &c->va)) ||
        (rc = train_run_make_split(r, c->task, TASK_TEST, r->test_n, &c->te))) {
        task_data_free(&c->tr), task_data_free(&c->va);
        memset(&c->tr, 0, sizeof c->tr), memset(&c->va, 0, sizeof c->va);
    }
    return rc;
}

/* The model fitted to the data, the sink of its rows and its resume state:
 * a run whose test row is not in the CSV yet is unfinished and continues
 * from its resumable checkpoint (if any), skipping the rows it wrote; a
 * finished run run again starts afresh and appends a new set of rows. */
static int run_prepare(run_ctx *c, train_result *res)
{
    row_sink *s = &c->sink;
    c->run = *c->given;
    int rc = fit_model_to(&c->run.model, &c->tr, c->tr.len);
    if (rc || (rc = sink_init(s, c->given, &c->run, c->task, &c->tr)))
        return rc;
    s->skipped = c->tr.skipped + c->va.skipped + c->te.skipped; /* every row of the run says the same */
    s->model = &c->m, s->valid = &c->va, s->res = res;
    if ((rc = nn_model_init(&c->m, &c->run.model, c->run.train.seed)))
        return rc;
    test_row_id(s, s->id);
    resume_path(s->path, s->id, c->resume, sizeof c->resume);
    cJSON *o = cJSON_Parse(s->config);
    cJSON_AddStringToObject(o, "job_id", s->id);
    s->resume_json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    s->resume = c->resume;
    if (!s->resume_json)
        return attn_fail(ATTN_ENOMEM, "training: out of memory");
    if ((rc = csvw_load_job_ids(s->path, &s->done)) > 0)
        rc = 0;
    s->skip_done = !rc && !csvw_idset_contains(&s->done, s->id);
    if (!rc && !s->skip_done) /* finished: a state left by a kill after the test row is stale */
        unlink(c->resume);
    /* open (or create) the results file now: a path that cannot be written
     * fails here, not at the first evaluation after minutes of training */
    if (!rc && !(rc = csvw_open(&s->w, s->path)))
        s->open = 1;
    if (!rc && c->given->checkpoint) /* likewise the checkpoint, written only after the test */
        rc = ckpt_check_writable(c->given->checkpoint);
    return rc;
}

/* After the test: --checkpoint, then the test row (both atomic, in this
 * order: a run whose test row is in the CSV always has its checkpoint, which
 * a resumed sweep reads back for the extrapolation cells still missing),
 * then the resume state goes. */
static int run_finish(run_ctx *c, train_result *res)
{
    int rc = 0;
    if (c->given->checkpoint) {
        char *json = checkpoint_json(&c->run, c->tr.len, &res->test);
        rc = save_weights(c->given->checkpoint, &c->m, json);
        free(json);
    }
    res->test.peak_rss_bytes = rss_peak_bytes();
    if (!rc)
        rc = write_eval_row(&c->sink, &res->test);
    if (!rc)
        unlink(c->resume); /* finished: the test row is in the CSV, the resume state is not needed */
    return rc;
}

int train_run_exec(const train_run_opts *r, train_result *res)
{
    train_result_init(res);
    run_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return attn_fail(ATTN_ENOMEM, "training: out of memory");
    c->given = r;
    if (!(c->task = task_find(r->task))) {
        free(c);
        return ATTN_EINVAL;
    }
    /* The rows' peak_rss_bytes is this training's peak (data, model,
     * optimiser state, activations), not the process's: a sweep runs many
     * trainings in one process, and without the reset every row after the
     * largest one repeated its peak (the LRA bubble chart then gave every
     * kernel the same memory). Where the reset is unsupported (rss.h) the
     * value stays the process peak so far. */
    rss_reset_peak();
    int rc = run_data(c);
    if (rc) {
        free(c);
        return rc;
    }
    if (!(rc = run_prepare(c, res))) {
        if (c->run.train.progress)
            fprintf(stderr, "train: %s (%s) on %lld examples of %s [%s], %zu parameters\n", r->task, c->task->suite,
                    (long long)c->tr.n, c->tr.data_source, c->tr.meta, c->m.n_params);
        rc = train_and_test(&c->sink, &c->m, &c->tr, &c->te, res);
    }
    if (!rc && c->run.train.progress)
        train_eval_print(stderr, &res->test);
    if (!rc)
        rc = run_finish(c, res);
    sink_fini(&c->sink);
    nn_model_free(&c->m);
    task_data_free(&c->tr), task_data_free(&c->va), task_data_free(&c->te);
    free(c);
    return rc;
}

/* The run with its model fitted to a test split te of n examples (made here; freed on error). */
static int fit_on_test_n(const train_run_opts *r, const task_def *t, int64_t n, train_run_opts *fitted,
                         task_data *te)
{
    int rc = train_run_make_split(r, t, TASK_TEST, n, te);
    if (rc)
        return rc;
    *fitted = *r;
    if ((rc = fit_model_to(&fitted->model, te, te->len)))
        task_data_free(te);
    return rc;
}

static int fit_on_test(const train_run_opts *r, const task_def *t, train_run_opts *fitted, task_data *te)
{
    return fit_on_test_n(r, t, r->test_n, fitted, te);
}

int train_run_fit_sample(const train_run_opts *r, int64_t n, train_run_opts *fitted, task_data *te)
{
    const task_def *t = task_find(r->task);
    return t ? fit_on_test_n(r, t, n, fitted, te) : attn_fail(ATTN_EINVAL, "unknown task '%s'", r->task);
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

void train_run_forget_resume(const train_run_opts *r, const char *id)
{
    char csv[1100], path[1200];
    train_run_results_path(r, csv, sizeof csv);
    resume_path(csv, id, path, sizeof path);
    unlink(path);
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
        row_identity(&sink, &row, r->train.steps, split, train_eval_metric(d));
        memcpy(id, row.cell[ATTN_COL_JOB_ID], 17);
        sink_fini(&sink);
    }
    return rc;
}

int train_run_eval_write(const train_run_opts *r, const task_data *d, nn_model *m, const char *split,
                         train_eval_result *e)
{
    const task_def *t = task_find(r->task);
    if (!t)
        return ATTN_EINVAL;
    row_sink sink;
    /* the row's peak RSS is this evaluation's (with the data and model it
     * holds), not the training's or an earlier cell's before it in a sweep */
    rss_reset_peak();
    int rc = train_eval_measure(m, d, 0, r->train.batch, r->train.threads, TRAIN_EVAL_CHECKPOINT, split, e);
    snprintf(e->task, sizeof e->task, "%s", r->task);
    e->step = r->train.steps, e->peak_rss_bytes = rss_peak_bytes();
    if (!rc && !(rc = sink_init(&sink, r, r, t, d))) {
        sink.model = m;
        rc = write_eval_row(&sink, e);
        sink_fini(&sink);
    }
    return rc;
}
