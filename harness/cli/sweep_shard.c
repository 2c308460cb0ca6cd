#include "sweep_shard.h"

#include "common/attn_error.h"
#include "harness/measure/bench_fit.h"
#include "sweep_train.h"
#include "harness/train/train_probe.h"
#include "tasks/task.h"

#include <stdlib.h>
#include <string.h>

double shard_kernel_cost(const bench_job *job)
{
    peak_result nominal = {0};
    nominal.sgemm_gflops = SHARD_NOMINAL_GFLOPS, nominal.stream_gbs = SHARD_NOMINAL_GBS;
    nominal.threads = job->args.threads;
    bench_estimate e;
    return bench_estimate_job(job, &nominal, &e) == 0 ? e.seconds : 0;
}

double shard_training_cost(const train_run_opts *r)
{
    train_run_opts fitted;
    task_data te;
    if (train_run_fit_sample(r, 1, &fitted, &te) != 0)
        return 0;
    double L = (double)te.len, d = (double)fitted.model.d_model, mlp = (double)fitted.model.mlp;
    task_data_free(&te);
    /* per token and layer: Q, K, V, O projections 8 d^2, the MLP 4 d mlp, attention 4 d L */
    double fwd_token = (double)fitted.model.layers * (8 * d * d + 4 * d * mlp + 4 * d * L);
    double batch_tokens = (double)fitted.train.batch * L, accum = fitted.train.accum > 0 ? (double)fitted.train.accum : 1;
    train_probe p = {0};
    p.len = te.len;
    p.eval_s = fwd_token * batch_tokens / (SHARD_NOMINAL_GFLOPS * 1e9);
    p.step_s = 3 * accum * p.eval_s; /* backward: twice the forward */
    return train_probe_seconds(&fitted, &p);
}

/* Index of the first item before j that shares kv file `name`, else j. */
static size_t kv_unit(const char *const *kv, size_t j)
{
    for (size_t i = 0; i < j; i++)
        if (kv[i] && kv[j] && !strcmp(kv[i], kv[j]))
            return i;
    return j;
}

int shard_items(const bench_job *jobs, size_t n_jobs, const train_run_opts *trains, size_t n_trains,
                shard_item **out)
{
    size_t n = n_jobs + n_trains;
    shard_item *it = calloc(n ? n : 1, sizeof *it);
    const char **kv = calloc(n ? n : 1, sizeof *kv);
    if (!it || !kv) {
        free(it), free(kv);
        return attn_fail(ATTN_ENOMEM, "sweep --shard: out of memory for %zu jobs", n);
    }
    for (size_t j = 0; j < n_jobs; j++) {
        it[j].cost = shard_kernel_cost(&jobs[j]);
        kv[j] = jobs[j].inputs.kv_file[0] ? jobs[j].inputs.kv_file : NULL;
    }
    for (size_t t = 0; t < n_trains; t++) {
        it[n_jobs + t].cost = shard_training_cost(&trains[t]);
        kv[n_jobs + t] = trains[t].dump_kv[0] ? trains[t].dump_kv : NULL;
    }
    for (size_t j = 0; j < n; j++)
        it[j].unit = kv_unit(kv, j);
    free(kv);
    *out = it;
    return 0;
}

typedef struct {
    double cost;
    size_t unit;
} unit_cost;

/* Longest first; equal costs by unit index, so every shard sorts alike. */
static int by_cost_desc(const void *a, const void *b)
{
    const unit_cost *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

int shard_assign(const shard_item *items, size_t n, int shards, int *owner, double *load)
{
    unit_cost *u = calloc(n ? n : 1, sizeof *u);
    double *sum = calloc((size_t)shards, sizeof *sum);
    int *unit_owner = malloc((n ? n : 1) * sizeof *unit_owner);
    if (!u || !sum || !unit_owner) {
        free(u), free(sum), free(unit_owner);
        return attn_fail(ATTN_ENOMEM, "sweep --shard: out of memory for %zu jobs", n);
    }
    for (size_t j = 0; j < n; j++)
        u[j].unit = j;
    for (size_t j = 0; j < n; j++)
        u[items[j].unit].cost += items[j].cost > 0 ? items[j].cost : 0;
    qsort(u, n, sizeof *u, by_cost_desc);
    for (size_t k = 0; k < n; k++) {
        int least = 0;
        for (int s = 1; s < shards; s++)
            least = sum[s] < sum[least] ? s : least;
        sum[least] += u[k].cost;
        unit_owner[u[k].unit] = least;
    }
    for (size_t j = 0; j < n; j++)
        owner[j] = unit_owner[items[j].unit];
    if (load)
        memcpy(load, sum, (size_t)shards * sizeof *sum);
    free(u), free(sum), free(unit_owner);
    return 0;
}

static int balance_alloc(shard_balance *b, int shards, int mine)
{
    memset(b, 0, sizeof *b);
    b->load = calloc((size_t)shards, sizeof *b->load);
    b->jobs = calloc((size_t)shards, sizeof *b->jobs);
    b->trains = calloc((size_t)shards, sizeof *b->trains);
    b->shards = shards, b->mine = mine;
    return b->load && b->jobs && b->trains ? 0 : attn_fail(ATTN_ENOMEM, "sweep --shard: out of memory");
}

void shard_balance_free(shard_balance *b)
{
    free(b->load), free(b->jobs), free(b->trains);
    memset(b, 0, sizeof *b);
}

/* The costliest unit: what no split can go below. */
static double largest_unit(const shard_item *it, size_t n)
{
    double *unit = calloc(n ? n : 1, sizeof *unit), top = 0;
    if (!unit)
        return 0;
    for (size_t j = 0; j < n; j++)
        unit[it[j].unit] += it[j].cost;
    for (size_t j = 0; j < n; j++)
        top = unit[j] > top ? unit[j] : top;
    free(unit);
    return top;
}

int shard_select(int mine, int shards, bench_job *jobs, size_t *n_jobs, struct sweep_trainings_s *t,
                 shard_balance *b)
{
    size_t nk = *n_jobs, n = nk + t->n;
    shard_item *it = NULL;
    int *owner = malloc((n ? n : 1) * sizeof *owner);
    unsigned char *keep = calloc(t->n ? t->n : 1, 1);
    int rc = !owner || !keep ? attn_fail(ATTN_ENOMEM, "sweep --shard: out of memory for %zu jobs", n)
                             : balance_alloc(b, shards, mine);
    if (!rc)
        rc = shard_items(jobs, nk, t->jobs, t->n, &it);
    if (!rc)
        rc = shard_assign(it, n, shards, owner, b->load);
    if (!rc) {
        b->largest_job = largest_unit(it, n);
        size_t k = 0;
        for (size_t j = 0; j < nk; j++) {
            b->jobs[owner[j]]++;
            if (owner[j] == mine)
                jobs[k++] = jobs[j];
        }
        *n_jobs = k;
        for (size_t j = 0; j < t->n; j++) {
            b->trains[owner[nk + j]]++;
            keep[j] = owner[nk + j] == mine;
        }
        sweep_trainings_keep(t, keep);
    }
    free(it), free(owner), free(keep);
    return rc;
}

double shard_balance_ratio(const shard_balance *b)
{
    double sum = 0, top = 0;
    for (int s = 0; s < b->shards; s++)
        sum += b->load[s], top = b->load[s] > top ? b->load[s] : top;
    return sum > 0 ? top / (sum / b->shards) : 1;
}

static double mean_load(const shard_balance *b)
{
    double sum = 0;
    for (int s = 0; s < b->shards; s++)
        sum += b->load[s];
    return sum / b->shards;
}

void shard_balance_print(FILE *f, const shard_balance *b)
{
    fprintf(f, "shards: %d, split longest first by nominal cost (analytic work at %g GFLOP/s and %g GB/s: a "
               "measure of size that every shard computes alike, not a time estimate)\n",
            b->shards, SHARD_NOMINAL_GFLOPS, SHARD_NOMINAL_GBS);
    for (int s = 0; s < b->shards; s++) {
        char load[32];
        bench_fmt_seconds(b->load[s], load, sizeof load);
        fprintf(f, "shard %d/%d: %zu kernel jobs, %zu trainings, nominal %s%s\n", s, b->shards, b->jobs[s],
                b->trains[s], load, s == b->mine ? "  <- this shard" : "");
    }
    double mean = mean_load(b);
    fprintf(f, "balance: largest shard %.3f x the mean; costliest job %.3f x the mean\n", shard_balance_ratio(b),
            mean > 0 ? b->largest_job / mean : 0);
}

void shard_balance_note(FILE *f, const shard_balance *b)
{
    double mean = mean_load(b);
    fprintf(f, "sweep: shard %d/%d: %zu kernel jobs and %zu trainings, %.3f x the mean shard's nominal cost "
               "(largest shard %.3f x)\n", b->mine, b->shards, b->jobs[b->mine], b->trains[b->mine],
            mean > 0 ? b->load[b->mine] / mean : 1, shard_balance_ratio(b));
}
