#include "sweep_train.h"

#include "cli.h"
#include "harness/measure/bench_fit.h"
#include "harness/measure/measure.h"
#include "harness/results/csvw.h"
#include "harness/train/config_train.h"
#include "harness/train/extrapolate.h"
#include "harness/train/train_probe.h"
#include "tasks/task.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The grid of one kernel (trained or swapped), then again under each memory
 * budget; 0 or the number of grids that failed. A budget the kernel cannot
 * meet is no failure: the mode refuses it, and the sweep says so and goes on. */
static int extrapolate_budgets(const train_run_opts *r, extrapolate_opts *e, const char *name)
{
    int rows, failed = 0;
    for (int b = -1; b < r->n_budgets; b++) {
        e->mem_budget = b >= 0 ? (uint64_t)r->mem_budget[b] : 0;
        int rc = extrapolate_run(e, &rows);
        if (rc == ATTN_EUNSUPPORTED && e->mem_budget)
            fprintf(stderr, "eval: %s under --mem-budget %llu: skipped: %s\n", name,
                    (unsigned long long)e->mem_budget, attn_last_error());
        else if (rc) {
            fprintf(stderr, "eval: %s: error: %s\n", name, attn_last_error());
            failed++;
        }
    }
    e->mem_budget = 0;
    return failed;
}

/* A training entry's "extrapolate": its checkpoint at longer lengths and
 * needle depths, then the same grid with each listed kernel swapped into
 * every layer (as 'attnbench eval --kernel'), each also under the listed
 * memory budgets. Cells whose row is already in the results (a cell: trained
 * job x scale x depth x swapped kernel x budget) are not evaluated again, so
 * a resumed sweep fills in exactly the missing ones. */
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
            e.kv_dtype = sw->kv_dtype;
            fprintf(stderr, "eval: %s swapped into every layer\n", sw->kernel);
        }
        failed += extrapolate_budgets(r, &e, sw ? sw->kernel : "trained kernel");
    }
    char kv[1400];
    int runs = (r->n_swaps + 1) * (r->n_budgets + 1);
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

static void print_training(size_t j, const train_run_opts *t, double est_s)
{
    printf("training %zu: %s %s%s layers=%lld d_model=%lld lr=%g steps=%lld batch=%lld train_n=%lld seed=%llu", j + 1,
           t->task, t->model.kernels[0], t->model.n_kernels > 1 ? "+..." : "", (long long)t->model.layers,
           (long long)t->model.d_model, t->train.lr, (long long)t->train.steps, (long long)t->train.batch,
           (long long)t->train_n, (unsigned long long)t->train.seed);
    for (int s = 0; s < t->n_scales; s++)
        printf("%s%lld", s ? "," : " extrapolate scale=", (long long)t->scale[s]);
    if (t->n_scales)
        printf(" depths=%d", t->depths);
    for (int b = 0; b < t->n_budgets; b++)
        printf("%s%lld", b ? "," : " mem_budgets=", (long long)t->mem_budget[b]);
    for (int k = 0; k < t->n_swaps; k++)
        printf("%s%s%s%s%s%s", k ? "," : " swapped=", t->swap[k].kernel, t->swap[k].mask[0] ? "@" : "", t->swap[k].mask,
               t->swap[k].kv_dtype ? ":kv=" : "", t->swap[k].kv_dtype ? attn_kv_dtype_names[t->swap[k].kv_dtype] : "");
    char est[32];
    bench_fmt_seconds(est_s, est, sizeof est);
    printf("  ~%s\n", est);
}

int sweep_trainings_load(const sweep_opts *o, const cfg_config *cfg, sweep_trainings *t)
{
    memset(t, 0, sizeof *t);
    const char *names[32];
    sweep_kernel_names(o, names);
    int rc = cfg_trainings_expand(cfg->trainings, cfg->n_trainings, o->suite, o->task, o->n_kernels ? names : NULL,
                                  (size_t)o->n_kernels, &t->jobs, &t->n);
    if (rc)
        return rc;
    if (o->task && !t->n)
        return attn_fail(ATTN_EINVAL, "--task %s: %s has no training job for it%s", o->task, cfg->path,
                         o->n_kernels ? " with these kernels" : "");
    size_t n = t->n ? t->n : 1;
    t->paths = calloc(n, sizeof *t->paths), t->ids = calloc(n, sizeof *t->ids), t->dirs = calloc(n, sizeof *t->dirs);
    t->done = calloc(n, 1), t->est_s = calloc(n, sizeof *t->est_s);
    if (!t->paths || !t->dirs || !t->ids || !t->done || !t->est_s)
        return attn_fail(ATTN_ENOMEM, "sweep: out of memory for %zu training jobs", t->n);
    for (size_t j = 0; j < t->n; j++) {
        const task_def *d = task_find(t->jobs[j].task);
        snprintf(t->dirs[j], sizeof t->dirs[j], "%s", o->results);
        snprintf(t->paths[j], sizeof t->paths[j], "%s/%s.csv", o->results, d ? d->suite : "train");
        t->jobs[j].out = t->paths[j];
    }
    return 0;
}

void sweep_trainings_keep(sweep_trainings *t, const unsigned char *keep)
{
    size_t k = 0;
    for (size_t j = 0; j < t->n; j++)
        if (keep[j]) {
            if (k != j) {
                t->jobs[k] = t->jobs[j];
                memcpy(t->paths[k], t->paths[j], sizeof t->paths[k]);
                memcpy(t->dirs[k], t->dirs[j], sizeof t->dirs[k]);
            }
            t->jobs[k].out = t->paths[k]; /* it pointed at row j's path */
            k++;
        }
    t->n = k;
}

/* Whether dir holds state of run j: its test row in its suite's file, its
 * resumable training checkpoint or its model checkpoint. */
static int has_state(sweep_trainings *t, size_t j, const char *dir)
{
    const char *csv = strrchr(t->paths[j], '/');
    char path[1200], ckpt[1300];
    snprintf(path, sizeof path, "%s%s", dir, csv ? csv : "/train.csv");
    train_run_opts r = t->jobs[j];
    r.out = path;
    char id[17];
    if (training_done(&r, id))
        return 1;
    snprintf(ckpt, sizeof ckpt, "%s/.train-%s.ckpt", dir, t->ids[j]);
    if (t->ids[j][0] && access(ckpt, F_OK) == 0)
        return 1;
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", dir, t->ids[j]);
    return t->ids[j][0] && access(ckpt, F_OK) == 0;
}

/* Run j into part directory `dir` (where its state is). */
static void move_run(sweep_trainings *t, size_t j, const char *dir)
{
    const char *csv = strrchr(t->paths[j], '/');
    char file[64]; /* "/<suite>.csv" */
    snprintf(file, sizeof file, "%s", csv ? csv : "/train.csv");
    snprintf(t->dirs[j], sizeof t->dirs[j], "%.1000s", dir);
    snprintf(t->paths[j], sizeof t->paths[j], "%.1000s%s", dir, file);
    t->jobs[j].out = t->paths[j];
}

int sweep_trainings_check_done(const sweep_opts *o, sweep_trainings *t)
{
    for (size_t j = 0; j < t->n; j++) {
        t->done[j] = (unsigned char)training_done(&t->jobs[j], t->ids[j]);
        /* an earlier run with another rank count left its state in another part: it goes on there */
        int mine = t->done[j] || has_state(t, j, o->results);
        for (int k = 0; !mine && k < o->n_parts; k++)
            if (has_state(t, j, o->parts[k])) {
                move_run(t, j, o->parts[k]);
                t->done[j] = (unsigned char)training_done(&t->jobs[j], t->ids[j]);
                fprintf(stderr, "sweep: training job %zu (%s, %s) goes on in %s, where an earlier run left it\n",
                        j + 1, t->jobs[j].task, t->jobs[j].model.kernels[0], o->parts[k]);
                break;
            }
        if (t->done[j] && !o->resume)
            return attn_fail(ATTN_EINVAL, "%s: training job %zu (%s, %s) already has rows; pass --resume to skip it",
                             t->jobs[j].out, j + 1, t->jobs[j].task, t->jobs[j].model.kernels[0]);
    }
    return 0;
}

void sweep_trainings_free(sweep_trainings *t)
{
    free(t->jobs), free(t->paths), free(t->dirs), free(t->ids), free(t->done), free(t->est_s);
    memset(t, 0, sizeof *t);
}

double sweep_trainings_estimate(sweep_trainings *t)
{
    double sum = 0;
    for (size_t j = 0; j < t->n; j++) {
        train_probe p;
        t->est_s[j] = 0;
        if (!t->done[j] && train_probe_run(&t->jobs[j], &p) == 0)
            t->est_s[j] = train_probe_seconds(&t->jobs[j], &p);
        sum += t->est_s[j];
    }
    return sum;
}

void sweep_trainings_print(const sweep_trainings *t)
{
    for (size_t j = 0; j < t->n; j++)
        print_training(j, &t->jobs[j], t->est_s[j]);
}

/* Run j: trains unless done, then its extrapolation grid. */
static int run_one(sweep_trainings *t, size_t j)
{
    train_run_opts *r = &t->jobs[j];
    int have = t->done[j];
    const char *id = t->ids[j];
    char ks[160] = "";
    for (int i = 0; i < r->model.n_kernels; i++)
        snprintf(ks + strlen(ks), sizeof ks - strlen(ks), "%s%s", i ? "+" : "", r->model.kernels[i]);
    fprintf(stderr, "[train %zu/%zu] %s with %s d_model=%lld lr=%g seed=%llu%s\n", j + 1, t->n, r->task, ks,
            (long long)r->model.d_model, r->train.lr, (unsigned long long)r->train.seed,
            !have ? "" : r->n_scales ? ": trained already (resume), extrapolation cells not yet in the results follow"
                                      : ": done already (resume)");
    if (have)
        train_run_forget_resume(r, id);
    if (have && !r->n_scales)
        return 0;
    char ckpt[1200];
    if (r->n_scales && id[0]) { /* the extrapolation reads the model back */
        snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", t->dirs[j], id);
        r->checkpoint = ckpt;
    }
    int rc = 0;
    if (!have) { /* the rows hold what it measured: the sweep needs only whether it ran */
        train_result res;
        rc = train_run_exec(r, &res);
        train_result_free(&res);
    }
    if (rc != 0)
        fprintf(stderr, "[train %zu/%zu] error: %s\n", j + 1, t->n, attn_last_error());
    else if (r->checkpoint && (rc = extrapolate_job(r, r->checkpoint, t->dirs[j])) != 0)
        fprintf(stderr, "[train %zu/%zu] extrapolation error: %s\n", j + 1, t->n, attn_last_error());
    r->checkpoint = NULL; /* ckpt goes out of scope */
    return rc;
}

int sweep_trainings_run(sweep_trainings *t, sweep_eta *eta, int *failed)
{
    for (size_t j = 0; j < t->n; j++) {
        if (run_one(t, j) != 0)
            *failed = 1;
        sweep_eta_done(eta, t->est_s[j]);
        fprintf(stderr, "[train %zu/%zu] done", j + 1, t->n);
        sweep_eta_print(stderr, eta);
        fputc('\n', stderr);
    }
    return 0;
}
