/* attnbench sweep: run a config's job grid into DIR/<suite>.csv, resumably. */
#include "harness/measure/bench.h"
#include "harness/measure/bench_fit.h"
#include "sweep_opts.h"
#include "cli.h"
#include "harness/measure/config.h"
#include "harness/train/config_train.h"
#include "harness/train/extrapolate.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"
#include "harness/results/scaling.h"
#include "harness/results/sparsity.h"
#include "harness/measure/sysinfo.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --kernel's names as the filters take them. */
static void kernel_names(const sweep_opts *o, const char *names[32])
{
    for (int i = 0; i < o->n_kernels; i++)
        names[i] = o->kernels[i];
}


static void describe_job(const bench_job *j, char *buf, size_t n)
{
    char mask[128];
    attn_mask_format(&j->args.mask, mask, sizeof mask);
    snprintf(buf, n, "%s %s %s B%lld H%lld/%lld N%lld/%lld D%lld T%d", j->kernel->name, mask,
             bench_pass_name(j->pass), (long long)j->args.B, (long long)j->args.H,
             (long long)j->args.H_kv, (long long)j->args.Nq, (long long)j->args.Nk,
             (long long)j->args.D, j->args.threads);
    if (j->args.kv_dtype != ATTN_KV_FP32)
        snprintf(buf + strlen(buf), n - strlen(buf), " kv=%s", attn_kv_dtype_names[j->args.kv_dtype]);
    if (j->lens.n) { /* a ragged or padded batch's lengths */
        snprintf(buf + strlen(buf), n - strlen(buf), " %s=", bench_lens_key(&j->lens));
        bench_lens_format(&j->lens, buf + strlen(buf), n - strlen(buf));
    }
}

/* Measures and records the machine peaks for every thread count in the run. */
static int record_peaks(const char *dir, const bench_job *jobs, size_t n, peak_result *peaks)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/peak.csv", dir);
    csvw w;
    int rc = csvw_open(&w, path);
    for (size_t i = 0; !rc && i < n; i++) {
        int t = jobs[i].args.threads;
        if (peaks[t].threads == t)
            continue;
        if ((rc = peak_measure(t, &peaks[t])) != 0)
            break;
        peak_print(stderr, &peaks[t]);
        csvw_row rows[2];
        bench_peak_rows(&peaks[t], rows);
        rc = csvw_write_rows(&w, rows, 2); /* sgemm and STREAM together: a kill leaves both or neither */
    }
    csvw_close(&w);
    return rc;
}

typedef struct {
    bench_job *jobs;
    size_t n;
    csvw_idset done;
    sparsity_refs dense; /* full-mask times, for sparsity efficiency */
    scaling_points scaling; /* times by length, for the scaling exponent */
} plan;

static int is_dense(const bench_job *j)
{
    return j->args.mask.kind == ATTN_MASK_FULL && !j->args.mask.causal;
}

/* Full-mask jobs first (stable), so every masked job finds its dense
 * reference from the same run. */
static void dense_first(plan *p)
{
    bench_job *sorted = malloc((p->n ? p->n : 1) * sizeof *sorted);
    if (!sorted)
        return; /* the order only matters for sparsity_eff, which then says NA */
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < p->n; j++)
            if (is_dense(&p->jobs[j]) == !pass)
                sorted[k++] = p->jobs[j];
    memcpy(p->jobs, sorted, p->n * sizeof *sorted);
    free(sorted);
}

static int build_plan(const sweep_opts *o, const cfg_config *cfg, plan *p)
{
    const char *names[32];
    kernel_names(o, names);
    cfg_filter f = {o->suite, o->n_kernels ? names : NULL, (size_t)o->n_kernels};
    cfg_job *cj;
    size_t n;
    int rc = cfg_expand_filtered(cfg, &f, &cj, &n);
    if (rc)
        return rc;
    p->jobs = calloc(n ? n : 1, sizeof *p->jobs);
    p->n = 0;
    if (!p->jobs) {
        free(cj);
        return attn_fail(ATTN_ENOMEM, "sweep: out of memory for %zu jobs", n);
    }
    csvw_idset_init(&p->done);
    sparsity_refs_init(&p->dense);
    scaling_init(&p->scaling);
    for (size_t j = 0; j < n; j++)
        if (!o->shard_n || (int64_t)(j % (size_t)o->shard_n) == o->shard_i)
            p->jobs[p->n++] = cj[j].job;
    free(cj);
    dense_first(p);
    return 0;
}

/* A row of an earlier run, read back from its file: the dense reference and
 * scaling point it contributes (its text is this run's input here). */
static int note_done_row(const csvw_row *row, void *arg)
{
    plan *p = arg;
    int ok = strcmp(row->cell[ATTN_COL_STATUS], "ok") == 0;
    double ms = strtod(row->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
    sparsity_run dense = {ok, strcmp(row->cell[ATTN_COL_MASK], "full") == 0, ms,
                          strtod(row->cell[ATTN_COL_DENSITY], NULL)};
    scaling_run point = {ok, strtod(row->cell[ATTN_COL_N_KV], NULL), ms};
    char shape[160], series[256];
    sparsity_shape_key(row, shape);
    scaling_series_key(row, series);
    sparsity_refs_note(&p->dense, shape, &dense);
    scaling_note(&p->scaling, series, &point);
    return 0;
}

/* The columns that compare a job with others of the run (and of earlier
 * runs of the sweep): sparsity efficiency and the scaling exponent. */
static void derive_across_jobs(plan *p, const bench_job *job, const csvw_row *identity, bench_result *res)
{
    int ok = res->status == BENCH_OK;
    sparsity_run dense = {ok, is_dense(job), res->time.median_ms, res->density};
    scaling_run point = {ok, (double)job->args.Nk, res->time.median_ms};
    char shape[160], series[256];
    sparsity_shape_key(identity, shape);
    scaling_series_key(identity, series);
    sparsity_refs_note(&p->dense, shape, &dense);
    res->sparsity_eff = sparsity_refs_eff(&p->dense, shape, &dense);
    res->n_exponent = scaling_exponent(&p->scaling, series, &point);
    scaling_note(&p->scaling, series, &point);
}

/* Loads the job ids already in each suite's file (any status), and the
 * full-mask times there, which a resumed sweep uses as dense references, and
 * the times by length for the scaling exponent. */
static int load_done(const char *dir, plan *p)
{
    for (size_t j = 0; j < p->n; j++) {
        if (j && strcmp(p->jobs[j].suite, p->jobs[j - 1].suite) == 0)
            continue;
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.csv", dir, p->jobs[j].suite);
        int rc = csvw_load_job_ids(path, &p->done);
        if (rc >= 0 && access(path, F_OK) == 0)
            rc = csvw_read_rows_before_repair(path, note_done_row, p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void print_eta(size_t i, size_t n, double elapsed_s, size_t ran)
{
    long eta = (long)(elapsed_s / (double)ran * (double)(n - i - 1) + 0.5);
    fprintf(stderr, " (elapsed %.0fs, ETA %ldm%02lds)", elapsed_s, eta / 60, eta % 60);
}

/* The results file of the current suite, kept open while consecutive jobs
 * share it (reopening validates the whole file each time). */
typedef struct {
    csvw w;
    char suite[ATTN_CELL_MAX];
    int open;
} csvw_pool;

/* A job's rows (all of one suite) in one write. */
static int write_rows(const char *dir, csvw_pool *out, const csvw_row *row, int n)
{
    const char *suite = row->cell[ATTN_COL_SUITE];
    if (!out->open || strcmp(out->suite, suite) != 0) {
        if (out->open)
            csvw_close(&out->w);
        out->open = 0;
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.csv", dir, suite);
        int rc = csvw_open(&out->w, path);
        if (rc)
            return rc;
        snprintf(out->suite, sizeof out->suite, "%s", suite);
        out->open = 1;
    }
    return csvw_write_rows(&out->w, row, n);
}

/* The kernel jobs of one phase: 0, those on generated inputs; 1, those
 * reading a kv file (inputs cache:FILE), which run after the trainings
 * because a training's "extrapolate.dump_kv" may write it. A kv file named
 * without a directory is looked up in the results directory. */
static int in_phase(const bench_job *job, int kv_phase) { return (job->inputs.kv_file[0] != '\0') == kv_phase; }

static bench_job resolved(const sweep_opts *o, const bench_job *job)
{
    bench_job r = *job;
    if (o->limits.max_time_s >= 0)
        r.limits.max_time_s = o->limits.max_time_s;
    if (o->limits.max_mem_bytes >= 0)
        r.limits.max_mem_bytes = o->limits.max_mem_bytes;
    if (!r.limits.max_mem_bytes)
        r.limits.max_mem_bytes = bench_default_max_mem();
    if (r.inputs.kv_file[0] && !strchr(r.inputs.kv_file, '/'))
        snprintf(r.inputs.kv_file, sizeof r.inputs.kv_file, "%.80s/%.100s", o->results, job->inputs.kv_file);
    return r;
}

static int run_plan(const sweep_opts *o, plan *p, int kv_phase)
{
    static peak_result peaks[1025]; /* kept for the second phase */
    size_t in = 0;
    for (size_t j = 0; j < p->n; j++)
        in += in_phase(&p->jobs[j], kv_phase);
    if (!in)
        return 0;
    int rc = record_peaks(o->results, p->jobs, p->n, peaks);
    if (rc)
        return rc;
    size_t ran = 0, skipped = 0, errors = 0;
    double t0 = measure_now_s();
    csvw_pool out = {0};
    for (size_t j = 0; j < p->n; j++) {
        bench_job *job = &p->jobs[j];
        csvw_row row;
        char what[256], id[17];
        if (!in_phase(job, kv_phase))
            continue;
        describe_job(job, what, sizeof what);
        bench_identity(job, &row);
        csvw_row_job_id(&row, id);
        if (csvw_idset_contains(&p->done, id)) {
            skipped++;
            continue;
        }
        fprintf(stderr, "[%zu/%zu] %s ...", j + 1, p->n, what);
        bench_result res;
        bench_job run = resolved(o, job);
        if ((rc = bench_run(&run, &peaks[job->args.threads], &res)) != 0)
            return rc;
        derive_across_jobs(p, job, &row, &res);
        bench_result_fill(&res, &row);
        csvw_row rows[BENCH_ROWS_MAX];
        if ((rc = write_rows(o->results, &out, rows, bench_result_rows(&res, &row, rows))) != 0)
            return rc;
        csvw_idset_add(&p->done, id);
        ran++;
        errors += res.status == BENCH_ERROR;
        fprintf(stderr, " %s ms, %s GFLOP/s, %s", row.cell[ATTN_COL_TIME_MS_MEDIAN], row.cell[ATTN_COL_GFLOPS],
                row.cell[ATTN_COL_STATUS]);
        print_eta(j, p->n, measure_now_s() - t0, ran);
        fputc('\n', stderr);
    }
    if (out.open)
        csvw_close(&out.w);
    fprintf(stderr, "sweep: %zu jobs run, %zu already in the results (resume), %zu errors\n", ran, skipped, errors);
    return errors ? 1 : 0;
}

/* 1 if the config has a kernel suite named s. */
static int kernel_suite(const cfg_config *cfg, const char *s)
{
    for (size_t i = 0; i < cfg->n_suites; i++)
        if (!strcmp(cfg->suites[i].name, s))
            return 1;
    return 0;
}

/* A training entry's "extrapolate": its checkpoint at longer lengths and
 * needle depths, then the same grid with each listed kernel swapped into
 * every layer (as 'attnbench eval --kernel'). Cells whose row is already in
 * the results (a cell: trained job x scale x depth x swapped kernel) are not
 * evaluated again, so a resumed sweep fills in exactly the missing ones. */
static int extrapolate_job(const train_run_opts *r, const char *ckpt, const char *results)
{
    extrapolate_opts e = {.checkpoint = ckpt, .out = r->out, .threads = r->train.threads, .n_scales = r->n_scales,
                          .depths = r->depths, .progress = 1, .skip_done = 1, .run = r};
    memcpy(e.scale, r->scale, sizeof(int64_t) * (size_t)r->n_scales);
    int rows, failed = 0;
    for (int k = -1; k < r->n_swaps; k++) { /* -1: the trained kernel; a failed grid does not stop the others */
        const train_kernel_swap *sw = k >= 0 ? &r->swap[k] : NULL;
        if (sw) {
            e.kernel = sw->kernel, e.kparams = sw->params, e.mask = sw->mask[0] ? sw->mask : NULL;
            fprintf(stderr, "eval: %s swapped into every layer\n", sw->kernel);
        }
        if (extrapolate_run(&e, &rows) != 0) {
            fprintf(stderr, "eval: %s: error: %s\n", sw ? sw->kernel : "trained kernel", attn_last_error());
            failed++;
        }
    }
    char kv[1400];
    int runs = r->n_swaps + 1;
    snprintf(kv, sizeof kv, "%s/%s", results, r->dump_kv);
    if (r->dump_kv[0] && access(kv, F_OK) != 0) { /* the cache jobs after the trainings read it */
        runs++;
        e.kernel = NULL, e.mask = NULL, e.kparams.n = 0, e.depths = 0, e.skip_done = 0, e.dump_kv = kv;
        e.scale[0] = r->scale[r->n_scales - 1], e.n_scales = 1;
        for (int i = 0; i < r->n_scales; i++)
            e.scale[0] = r->scale[i] > e.scale[0] ? r->scale[i] : e.scale[0];
        if (extrapolate_run(&e, &rows) != 0) {
            fprintf(stderr, "eval: --dump-kv %s: error: %s\n", kv, attn_last_error());
            failed++;
        } else
            fprintf(stderr, "eval: attention inputs at %lldx the trained length written to %s\n",
                    (long long)e.scale[0], kv);
    }
    return failed ? attn_fail(ATTN_EINVAL, "%d of %d evaluations failed (errors above)", failed, runs) : 0;
}

/* Whether run r's final test row is in its results file (id: its job_id,
 * "" when the run cannot make its test split). */
static int training_done(const train_run_opts *r, char id[17])
{
    csvw_idset done;
    csvw_idset_init(&done);
    int have = 0;
    if (train_run_test_id(r, id) != 0)
        id[0] = '\0';
    else if (csvw_load_job_ids(r->out, &done) >= 0)
        have = csvw_idset_contains(&done, id) != 0;
    csvw_idset_free(&done);
    return have;
}

/* The training jobs (after the kernel jobs): each one trains, evaluates and
 * writes its rows; with --resume a job whose test row exists is not trained
 * again, and only its missing extrapolation cells are evaluated. */
static int run_trainings(const sweep_opts *o, const cfg_config *cfg, int *failed)
{
    const char *names[32];
    kernel_names(o, names);
    train_run_opts *jobs;
    size_t n;
    int rc = cfg_trainings_expand(cfg->trainings, cfg->n_trainings, o->suite, o->task,
                                  o->n_kernels ? names : NULL, (size_t)o->n_kernels, &jobs, &n);
    if (rc)
        return rc;
    if (o->task && !n) {
        free(jobs);
        return attn_fail(ATTN_EINVAL, "--task %s: %s has no training job for it%s", o->task, cfg->path,
                         o->n_kernels ? " with these kernels" : "");
    }
    char (*paths)[1100] = calloc(n ? n : 1, sizeof *paths);
    for (size_t j = 0; !rc && paths && j < n; j++) {
        const task_def *t = task_find(jobs[j].task);
        snprintf(paths[j], sizeof paths[j], "%s/%s.csv", o->results, t ? t->suite : "train");
        jobs[j].out = paths[j];
    }
    double t0 = measure_now_s();
    for (size_t j = 0; !rc && paths && j < n; j++) {
        train_run_opts *r = &jobs[j];
        char id[17];
        int have = training_done(r, id);
        if (have && !o->resume) {
            rc = attn_fail(ATTN_EINVAL, "%s: training job %zu (%s, %s) already has rows; pass --resume to skip it",
                           r->out, j + 1, r->task, r->model.kernels[0]);
            break;
        }
        char ks[160] = "";
        for (int i = 0; i < r->model.n_kernels; i++)
            snprintf(ks + strlen(ks), sizeof ks - strlen(ks), "%s%s", i ? "+" : "", r->model.kernels[i]);
        fprintf(stderr, "[train %zu/%zu] %s with %s d_model=%lld lr=%g seed=%llu%s\n", j + 1, n, r->task, ks,
                (long long)r->model.d_model, r->train.lr, (unsigned long long)r->train.seed,
                !have ? "" : r->n_scales ? ": trained already (resume), extrapolation cells not yet in the results follow"
                                          : ": done already (resume)");
        if (have)
            train_run_forget_resume(r, id);
        if (have && !r->n_scales)
            continue;
        char ckpt[1200];
        if (r->n_scales && id[0]) { /* the extrapolation reads the model back */
            snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", o->results, id);
            r->checkpoint = ckpt;
        }
        int train_rc = 0;
        if (!have) { /* the rows hold what it measured: the sweep needs only whether it ran */
            train_result res;
            train_rc = train_run_exec(r, &res);
            train_result_free(&res);
        }
        if (train_rc != 0) {
            fprintf(stderr, "[train %zu/%zu] error: %s\n", j + 1, n, attn_last_error());
            *failed = 1;
        } else if (r->checkpoint && extrapolate_job(r, r->checkpoint, o->results) != 0) {
            fprintf(stderr, "[train %zu/%zu] extrapolation error: %s\n", j + 1, n, attn_last_error());
            *failed = 1;
        }
        fprintf(stderr, "[train %zu/%zu] elapsed %.0fs\n", j + 1, n, measure_now_s() - t0);
    }
    if (!paths)
        rc = attn_fail(ATTN_ENOMEM, "sweep: out of memory");
    free(paths);
    free(jobs);
    return rc;
}

/* --task and --suite must name something the config has. */
static int check_selection(const sweep_opts *o, const cfg_config *cfg)
{
    if (o->task && !cfg->n_trainings)
        return attn_fail(ATTN_EINVAL, "--task %s: %s has no training job for it (no \"trainings\" entries)", o->task,
                         o->config);
    if (!o->suite || kernel_suite(cfg, o->suite))
        return 0;
    for (size_t i = 0; i < cfg->n_trainings; i++)
        if (!strcmp(cfg->trainings[i].suite, o->suite))
            return 0;
    return attn_fail(ATTN_EINVAL, "--suite %s: %s has no kernel suite or training entry of that name", o->suite,
                     o->config);
}

static void print_training(size_t j, const train_run_opts *t)
{
    printf("training %zu: %s %s%s layers=%lld d_model=%lld lr=%g steps=%lld batch=%lld train_n=%lld seed=%llu", j + 1,
           t->task, t->model.kernels[0], t->model.n_kernels > 1 ? "+..." : "", (long long)t->model.layers,
           (long long)t->model.d_model, t->train.lr, (long long)t->train.steps, (long long)t->train.batch,
           (long long)t->train_n, (unsigned long long)t->train.seed);
    for (int s = 0; s < t->n_scales; s++)
        printf("%s%lld", s ? "," : " extrapolate scale=", (long long)t->scale[s]);
    if (t->n_scales)
        printf(" depths=%d", t->depths);
    for (int k = 0; k < t->n_swaps; k++)
        printf("%s%s%s%s", k ? "," : " swapped=", t->swap[k].kernel, t->swap[k].mask[0] ? "@" : "", t->swap[k].mask);
    printf("\n");
}

/* --dry-run: the resolved config, then every job it would run. */
static int print_dry_run(const sweep_opts *o, const cfg_config *cfg, const plan *p, int kernels_too)
{
    cfg_dump(stdout, cfg);
    for (size_t j = 0; j < p->n; j++) {
        char what[256];
        describe_job(&p->jobs[j], what, sizeof what);
        printf("job %zu: %s\n", j + 1, what);
    }
    train_run_opts *tj = NULL;
    size_t tn = 0;
    const char *names[32];
    kernel_names(o, names);
    int rc = 0;
    if (cfg->n_trainings && (!o->suite || !kernels_too) &&
        (rc = cfg_trainings_expand(cfg->trainings, cfg->n_trainings, o->suite, o->task, o->n_kernels ? names : NULL,
                                   (size_t)o->n_kernels, &tj, &tn)) != 0)
        return rc;
    if (o->task && !tn)
        rc = attn_fail(ATTN_EINVAL, "--task %s: %s has no training job for it", o->task, o->config);
    for (size_t j = 0; !rc && j < tn; j++)
        print_training(j, &tj[j]);
    free(tj);
    return rc;
}

/* Without --resume, none of the jobs may have rows already. */
static int check_fresh(const sweep_opts *o, const plan *p)
{
    if (o->resume || !p->done.n)
        return 0;
    size_t present = 0;
    for (size_t j = 0; j < p->n; j++) {
        csvw_row row;
        char id[17];
        bench_identity(&p->jobs[j], &row);
        csvw_row_job_id(&row, id);
        present += csvw_idset_contains(&p->done, id) != 0;
    }
    if (present)
        return attn_fail(ATTN_EINVAL, "%s: %zu of these %zu jobs already have rows; pass --resume to skip them "
                                      "(or move the old results away)", o->results, present, p->n);
    return 0;
}

int cmd_sweep(int argc, char **argv)
{
    sweep_opts o;
    int rc = sweep_parse_opts(argc, argv, &o);
    if (rc > 0)
        return 0;
    if (rc)
        return cli_report("sweep");
    cfg_config cfg;
    plan p = {0};
    int failed_jobs = 0;
    if ((rc = cfg_load(o.config, &cfg)) != 0 || (rc = check_selection(&o, &cfg)) != 0)
        goto out;
    /* kernel jobs unless only training jobs are asked for (--task, or a training suite) */
    int kernels_too = !o.task && cfg.n_suites && (!o.suite || kernel_suite(&cfg, o.suite));
    if (kernels_too && (rc = build_plan(&o, &cfg, &p)) != 0)
        goto out;
    if (o.dry_run) {
        rc = print_dry_run(&o, &cfg, &p, kernels_too);
        goto out;
    }
    mkdir(o.results, 0777);
    if ((rc = load_done(o.results, &p)) != 0 || (rc = check_fresh(&o, &p)) != 0)
        goto out;
    sysinfo_print(stderr);
    if (kernels_too) {
        rc = run_plan(&o, &p, 0);
        if (rc > 0)
            failed_jobs = 1, rc = 0; /* rows say which; the exit code says some failed */
    }
    if (!rc && cfg.n_trainings && (!o.suite || !kernels_too))
        rc = run_trainings(&o, &cfg, &failed_jobs);
    if (!rc && kernels_too) { /* jobs on a trained model's cache: after the trainings that write it */
        rc = run_plan(&o, &p, 1);
        if (rc > 0)
            failed_jobs = 1, rc = 0;
    }
out:
    free(p.jobs);
    csvw_idset_free(&p.done);
    sparsity_refs_free(&p.dense);
    scaling_free(&p.scaling);
    cfg_free(&cfg);
    return rc ? cli_report("sweep") : failed_jobs;
}
