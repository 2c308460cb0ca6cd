/* attnbench sweep: run a config's job grid into DIR/<suite>.csv, resumably. */
#include "harness/measure/bench.h"
#include "harness/measure/bench_cost.h"
#include "harness/measure/bench_fit.h"
#include "sweep_eta.h"
#include "sweep_mpi_hook.h"
#include "sweep_opts.h"
#include "sweep_probe.h"
#include "sweep_shard.h"
#include "sweep_train.h"
#include "cli.h"
#include "harness/measure/config.h"
#include "harness/results/csvw.h"
#include "harness/train/config_train.h"
#include "kernels/core/registry.h"
#include "harness/results/scaling.h"
#include "harness/results/sparsity.h"
#include "harness/measure/sysinfo.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>



static void describe_job(const bench_job *j, char *buf, size_t n)
{
    char mask[128];
    attn_mask_format(&j->args.mask, mask, sizeof mask);
    snprintf(buf, n, "%s %s %s B%lld H%lld/%lld N%lld/%lld D%lld T%d", j->kernel->name, mask,
             bench_pass_name(j->pass), (long long)j->args.B, (long long)j->args.H,
             (long long)j->args.H_kv, (long long)j->args.Nq, (long long)j->args.Nk,
             (long long)j->args.D, j->args.threads);
    for (int i = 0; i < j->args.params.n; i++) /* two entries of a suite's params differ only here */
        snprintf(buf + strlen(buf), n - strlen(buf), " %s=%s", j->args.params.key[i], j->args.params.val[i]);
    if (j->args.kv_dtype != ATTN_KV_FP32)
        snprintf(buf + strlen(buf), n - strlen(buf), " kv=%s", attn_kv_dtype_names[j->args.kv_dtype]);
    if (j->args.dtype != ATTN_DT_FP32)
        snprintf(buf + strlen(buf), n - strlen(buf), " dtype=%s", attn_dtype_names[j->args.dtype]);
    if (j->args.mem_budget)
        snprintf(buf + strlen(buf), n - strlen(buf), " mem_budget=%llu", (unsigned long long)j->args.mem_budget);
    if (j->lens.n) { /* a ragged or padded batch's lengths */
        snprintf(buf + strlen(buf), n - strlen(buf), " %s=", bench_lens_key(&j->lens));
        bench_lens_format(&j->lens, buf + strlen(buf), n - strlen(buf));
    }
}

/* Thread counts a sweep's peaks are kept for (the config parser's bound). */
#define SWEEP_MAX_THREADS 1024

/* Measures the machine peaks for every thread count in the run and records
 * them in dir/peak.csv (dir NULL: a dry run, nothing written). */
static int record_peaks(const char *dir, const bench_job *jobs, size_t n, peak_result *peaks)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/peak.csv", dir ? dir : "");
    csvw w;
    int rc = dir ? csvw_open(&w, path) : 0;
    for (size_t i = 0; !rc && i < n; i++) {
        int t = jobs[i].args.threads;
        if (peaks[t].threads == t)
            continue;
        if ((rc = peak_measure(t, &peaks[t])) != 0)
            break;
        peak_print(stderr, &peaks[t]);
        csvw_row rows[BENCH_PEAK_ROWS];
        bench_peak_rows(&peaks[t], rows);
        if (dir) /* the peaks together: a kill leaves all or none */
            rc = csvw_write_rows(&w, rows, BENCH_PEAK_ROWS);
    }
    if (dir)
        csvw_close(&w);
    return rc;
}

typedef struct {
    bench_job *jobs;
    size_t n;
    double *est_s;       /* each job's estimate (bench_cost.h); 0 when done already */
    peak_result *peaks;  /* by thread count: this run's peaks, measured before the estimate */
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
    sweep_kernel_names(o, names);
    cfg_filter f = {o->suite, o->n_kernels ? names : NULL, (size_t)o->n_kernels};
    cfg_job *cj;
    size_t n;
    int rc = cfg_expand_filtered(cfg, &f, &cj, &n);
    if (rc)
        return rc;
    p->jobs = calloc(n ? n : 1, sizeof *p->jobs);
    p->est_s = calloc(n ? n : 1, sizeof *p->est_s);
    p->peaks = calloc(SWEEP_MAX_THREADS + 1, sizeof *p->peaks);
    p->n = 0;
    if (!p->jobs || !p->est_s || !p->peaks) {
        free(cj);
        return attn_fail(ATTN_ENOMEM, "sweep: out of memory for %zu jobs", n);
    }
    csvw_idset_init(&p->done);
    sparsity_refs_init(&p->dense);
    scaling_init(&p->scaling);
    for (size_t j = 0; j < n; j++)
        p->jobs[p->n++] = cj[j].job;
    free(cj);
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
static int load_done_in(const char *dir, plan *p)
{
    for (size_t j = 0; j < p->n; j++) {
        if (j && strcmp(p->jobs[j].suite, p->jobs[j - 1].suite) == 0)
            continue;
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.csv", dir, p->jobs[j].suite);
        /* a file of the earlier header is refused now, not after a job ran for it */
        int rc = csvw_check_appendable(path);
        if (rc >= 0)
            rc = csvw_load_job_ids(path, &p->done);
        if (rc >= 0 && access(path, F_OK) == 0)
            rc = csvw_read_rows_before_repair(path, note_done_row, p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* load_done_in for the results and for every other part directory of an
 * earlier run (under mpirun), whose jobs are done too. */
static int load_done(const sweep_opts *o, plan *p)
{
    int rc = load_done_in(o->results, p);
    for (int k = 0; !rc && k < o->n_parts; k++)
        rc = load_done_in(o->parts[k], p);
    return rc;
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
    if (r.inputs.kv_file[0] && !strchr(r.inputs.kv_file, '/')) {
        snprintf(r.inputs.kv_file, sizeof r.inputs.kv_file, "%.80s/%.100s", o->results, job->inputs.kv_file);
        /* its training may have run in another part of an earlier run (another rank count) */
        for (int k = 0; k < o->n_parts && access(r.inputs.kv_file, F_OK) != 0; k++)
            snprintf(r.inputs.kv_file, sizeof r.inputs.kv_file, "%.80s/%.100s", o->parts[k], job->inputs.kv_file);
        if (access(r.inputs.kv_file, F_OK) != 0) /* not written yet: its training writes it here */
            snprintf(r.inputs.kv_file, sizeof r.inputs.kv_file, "%.80s/%.100s", o->results, job->inputs.kv_file);
    }
    return r;
}

/* The job's row identity and whether the results hold it already. */
static int job_done(const plan *p, const bench_job *job, csvw_row *row, char id[17])
{
    bench_identity(job, row);
    csvw_row_job_id(row, id);
    return csvw_idset_contains(&p->done, id) != 0;
}

/* Every job's estimate (0 for those done); the sum. */
static double estimate_plan(const sweep_opts *o, plan *p, size_t *kinds)
{
    bench_cost_cache cache;
    bench_cost_init(&cache);
    double sum = 0;
    for (size_t j = 0; j < p->n; j++) {
        csvw_row row;
        char id[17];
        bench_job run = resolved(o, &p->jobs[j]);
        p->est_s[j] = job_done(p, &p->jobs[j], &row, id) ? 0 : bench_cost_job(&run, &p->peaks[run.args.threads], &cache);
        sum += p->est_s[j];
    }
    *kinds = cache.n;
    bench_cost_free(&cache);
    return sum;
}

typedef struct {
    const char *dir;
    csvw_pool *pool;
} pool_writer;

static int write_held(void *ud, const csvw_row *rows, int n)
{
    pool_writer *w = ud;
    return write_rows(w->dir, w->pool, rows, n);
}

/* Runs one job and writes its rows, or holds them in the memory-bound group
 * (sweep_probe.h) until the probe after the group. */
static int run_job(const sweep_opts *o, plan *p, size_t j, sweep_group *g, pool_writer *out, csvw_row *row,
                   bench_result *res)
{
    bench_job *job = &p->jobs[j];
    bench_job run = resolved(o, job);
    const peak_result *peak = &p->peaks[job->args.threads];
    int grouped = sweep_job_memory_bound(&run, peak);
    int rc = grouped ? sweep_group_enter(g, &run, write_held, out) : sweep_group_close(g, write_held, out);
    if (rc || (rc = bench_run(&run, peak, res)) != 0)
        return rc;
    derive_across_jobs(p, job, row, res);
    bench_result_fill(res, row);
    csvw_row rows[BENCH_ROWS_MAX];
    int n = bench_result_rows(res, row, rows);
    if (!grouped)
        return write_held(out, rows, n);
    sweep_group_hold(g, rows, n, res);
    return 0;
}

static int run_plan(const sweep_opts *o, plan *p, int kv_phase, sweep_eta *eta)
{
    size_t ran = 0, skipped = 0, errors = 0, in = 0;
    for (size_t j = 0; j < p->n; j++)
        in += in_phase(&p->jobs[j], kv_phase);
    if (!in)
        return 0;
    csvw_pool pool = {0};
    pool_writer out = {o->results, &pool};
    sweep_group group;
    int rc = sweep_group_init(&group);
    for (size_t j = 0; !rc && j < p->n; j++) {
        bench_job *job = &p->jobs[j];
        csvw_row row;
        char what[256], id[17];
        if (!in_phase(job, kv_phase))
            continue;
        if (job_done(p, job, &row, id)) {
            skipped++;
            continue;
        }
        describe_job(job, what, sizeof what);
        fprintf(stderr, "[%zu/%zu] %s ...", j + 1, p->n, what);
        bench_result res;
        if ((rc = run_job(o, p, j, &group, &out, &row, &res)) != 0)
            break;
        csvw_idset_add(&p->done, id);
        ran++;
        errors += res.status == BENCH_ERROR;
        fprintf(stderr, " %s ms, %s GFLOP/s, %s", row.cell[ATTN_COL_TIME_MS_MEDIAN], row.cell[ATTN_COL_GFLOPS],
                row.cell[ATTN_COL_STATUS]);
        sweep_eta_done(eta, p->est_s[j]);
        sweep_eta_print(stderr, eta);
        fputc('\n', stderr);
    }
    if (!rc && group.threads) {
        fputs("sweep: after the last memory-bound jobs", stderr);
        rc = sweep_group_close(&group, write_held, &out);
        fputc('\n', stderr);
    }
    sweep_group_free(&group);
    if (pool.open)
        csvw_close(&pool.w);
    if (rc)
        return rc;
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

/* --dry-run: the resolved config, then every job it would run with its estimate. */
static void print_dry_run(const cfg_config *cfg, const plan *p, const sweep_trainings *t, const shard_balance *b)
{
    cfg_dump(stdout, cfg);
    if (b->shards)
        shard_balance_print(stdout, b);
    for (size_t j = 0; j < p->n; j++) {
        char what[256], est[32];
        describe_job(&p->jobs[j], what, sizeof what);
        bench_fmt_seconds(p->est_s[j], est, sizeof est);
        printf("job %zu: %s  ~%s\n", j + 1, what, est);
    }
    sweep_trainings_print(t);
}

/* The estimate of what the sweep will run (probes: bench_cost.h,
 * train_probe.h), printed on one line. */
static double estimate(const sweep_opts *o, plan *p, sweep_trainings *t)
{
    double t0 = measure_now_s();
    size_t kinds = 0, jobs = 0, runs = 0;
    fprintf(stderr, "sweep: estimating (each kind of kernel job probed at a short length, each training for two "
                    "steps) ...\n");
    double k = estimate_plan(o, p, &kinds), tr = sweep_trainings_estimate(t);
    for (size_t j = 0; j < p->n; j++)
        jobs += p->est_s[j] > 0;
    for (size_t j = 0; j < t->n; j++)
        runs += !t->done[j];
    char all[32], ks[32], ts[32], probes[32];
    bench_fmt_seconds(k + tr, all, sizeof all), bench_fmt_seconds(k, ks, sizeof ks);
    bench_fmt_seconds(tr, ts, sizeof ts), bench_fmt_seconds(measure_now_s() - t0, probes, sizeof probes);
    double load[1] = {0};
    int have_load = getloadavg(load, 1) == 1;
    fprintf(stderr, "sweep: estimated %s: %zu kernel jobs %s (%zu kinds probed), %zu trainings %s (probes took "
                    "%s", all, jobs, ks, kinds, runs, ts, probes);
    if (have_load) /* the estimate holds for the machine as loaded as it was during the probes */
        fprintf(stderr, " at load average %.1f on %ld cores", load[0], sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(stderr, ")\n");
    return k + tr;
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

/* One process's sweep (a shard of it with --shard); the exit code. */
static int sweep_exec(const sweep_opts *opts)
{
    sweep_opts o = *opts;
    int rc;
    cfg_config cfg;
    plan p = {0};
    sweep_trainings tr = {0};
    shard_balance balance = {0};
    int failed_jobs = 0;
    if ((rc = cfg_load(o.config, &cfg)) != 0 || (rc = check_selection(&o, &cfg)) != 0)
        goto out;
    /* kernel jobs unless only training jobs are asked for (--task, or a training suite) */
    int kernels_too = !o.task && cfg.n_suites && (!o.suite || kernel_suite(&cfg, o.suite));
    int trainings_too = cfg.n_trainings && (!o.suite || !kernels_too);
    if ((kernels_too && (rc = build_plan(&o, &cfg, &p)) != 0) ||
        (trainings_too && (rc = sweep_trainings_load(&o, &cfg, &tr)) != 0))
        goto out;
    if (o.shard_n && (rc = shard_select((int)o.shard_i, (int)o.shard_n, p.jobs, &p.n, &tr, &balance)) != 0)
        goto out;
    if (p.n)
        dense_first(&p);
    if (!o.dry_run) {
        mkdir(o.results, 0777);
        if ((rc = load_done(&o, &p)) != 0 || (rc = check_fresh(&o, &p)) != 0 ||
            (rc = sweep_trainings_check_done(&o, &tr)) != 0)
            goto out;
        sysinfo_print(stderr);
        if (balance.shards)
            shard_balance_note(stderr, &balance);
    }
    if (kernels_too && (rc = record_peaks(o.dry_run ? NULL : o.results, p.jobs, p.n, p.peaks)) != 0)
        goto out;
    sweep_eta eta;
    sweep_eta_start(&eta, estimate(&o, &p, &tr));
    if (o.dry_run) {
        print_dry_run(&cfg, &p, &tr, &balance);
        goto out;
    }
    sweep_eta_start(&eta, eta.total_s); /* the clock starts after the probes */
    if (kernels_too) {
        rc = run_plan(&o, &p, 0, &eta);
        if (rc > 0)
            failed_jobs = 1, rc = 0; /* rows say which; the exit code says some failed */
    }
    if (!rc && trainings_too)
        rc = sweep_trainings_run(&tr, &eta, &failed_jobs);
    if (!rc && kernels_too) { /* jobs on a trained model's cache: after the trainings that write it */
        rc = run_plan(&o, &p, 1, &eta);
        if (rc > 0)
            failed_jobs = 1, rc = 0;
    }
out:
    free(p.jobs);
    free(p.est_s);
    free(p.peaks);
    csvw_idset_free(&p.done);
    sparsity_refs_free(&p.dense);
    scaling_free(&p.scaling);
    sweep_trainings_free(&tr);
    shard_balance_free(&balance);
    cfg_free(&cfg);
    return rc ? cli_report("sweep") : failed_jobs;
}

cli_sweep_ranks_runner cli_sweep_ranks = NULL;

int cli_mpi_launched_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
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
    int ranks = cli_mpi_launched_size();
    if (!ranks)
        return sweep_exec(&o);
    if (!cli_sweep_ranks) {
        attn_fail(ATTN_EUNSUPPORTED, "started by an MPI launcher (%d ranks), and this build has no MPI: apt-get "
                  "install libopenmpi-dev openmpi-bin, then rebuild (or split the sweep with --shard i/n)", ranks);
        return cli_report("sweep");
    }
    return cli_sweep_ranks(&o, sweep_exec); /* rank r: shard r/P into DIR/part-r, rank 0 merges */
}
