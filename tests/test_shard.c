/* Balanced sweep shards (harness/cli/sweep_shard.h): the split is the same
 * in every process, keeps the largest shard near the mean on the shipped
 * configs, and keeps a kv file's readers with the training that writes it. */
#include "harness/cli/sweep_shard.h"
#include "harness/cli/sweep_train.h"
#include "harness/measure/config.h"
#include "harness/train/config_train.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(shard, .init = quiet, .timeout = 600);

/* A config's kernel jobs and trainings, as the sweep expands them. */
typedef struct {
    cfg_config cfg;
    bench_job *jobs;
    size_t n_jobs;
    train_run_opts *trains;
    size_t n_trains;
} expanded;

static void expand(const char *name, expanded *e)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/%s", ATTN_SOURCE_DIR, name);
    cr_assert_eq(cfg_load(path, &e->cfg), 0, "%s", path);
    cfg_filter f = {0};
    cfg_job *cj;
    cr_assert_eq(cfg_expand_filtered(&e->cfg, &f, &cj, &e->n_jobs), 0);
    e->jobs = calloc(e->n_jobs + 1, sizeof *e->jobs);
    for (size_t j = 0; j < e->n_jobs; j++)
        e->jobs[j] = cj[j].job;
    free(cj);
    cr_assert_eq(cfg_trainings_expand(e->cfg.trainings, e->cfg.n_trainings, NULL, NULL, NULL, 0, &e->trains,
                                      &e->n_trains), 0);
}

static void expanded_free(expanded *e)
{
    free(e->jobs), free(e->trains);
    cfg_free(&e->cfg);
}

static double max_of(const double *v, int n, double *sum)
{
    double top = 0;
    *sum = 0;
    for (int i = 0; i < n; i++)
        top = v[i] > top ? v[i] : top, *sum += v[i];
    return top;
}

/* The shipped profiles split over 4 and 16 shards: the largest shard within
 * 1.2 x the mean whenever no single job (unit) is above the mean; otherwise
 * no worse than that job itself plus 20 % of the mean. */
static void check_balance(const char *config)
{
    expanded e;
    expand(config, &e);
    shard_item *it;
    cr_assert_eq(shard_items(e.jobs, e.n_jobs, e.trains, e.n_trains, &it), 0);
    size_t n = e.n_jobs + e.n_trains;
    double units[n + 1], biggest = 0;
    memset(units, 0, sizeof units);
    for (size_t j = 0; j < n; j++)
        units[it[j].unit] += it[j].cost;
    for (size_t j = 0; j < n; j++)
        biggest = units[j] > biggest ? units[j] : biggest;
    for (int shards = 4; shards <= 16; shards *= 4) {
        int owner[n + 1];
        double load[16], sum;
        cr_assert_eq(shard_assign(it, n, shards, owner, load), 0);
        double top = max_of(load, shards, &sum), mean = sum / shards;
        cr_assert_gt(mean, 0);
        printf("shard balance: %s over %d shards (%zu kernel jobs, %zu trainings): largest %.3f x the mean, "
               "costliest job %.3f x the mean\n", config, shards, e.n_jobs, e.n_trains, top / mean, biggest / mean);
        if (biggest <= mean)
            cr_assert_leq(top, 1.2 * mean, "%s / %d: largest shard %.3f x the mean", config, shards, top / mean);
        else
            cr_assert_leq(top, biggest + 0.2 * mean, "%s / %d: largest shard %.3f x the mean, costliest job %.3f",
                          config, shards, top / mean, biggest / mean);
    }
    free(it);
    expanded_free(&e);
}

Test(shard, default_config_shards_are_balanced_within_1_2_of_the_mean) { check_balance("default.json"); }
Test(shard, full_config_shards_are_balanced_within_1_2_of_the_mean) { check_balance("full.json"); }

/* Every shard computes the same assignment: costs are analytic, so two
 * independent expansions and splits of one config agree job for job. */
Test(shard, two_processes_worth_of_assignment_agree)
{
    expanded a, b;
    expand("default.json", &a);
    expand("default.json", &b);
    shard_item *ia, *ib;
    cr_assert_eq(shard_items(a.jobs, a.n_jobs, a.trains, a.n_trains, &ia), 0);
    cr_assert_eq(shard_items(b.jobs, b.n_jobs, b.trains, b.n_trains, &ib), 0);
    size_t n = a.n_jobs + a.n_trains;
    int oa[n + 1], ob[n + 1];
    cr_assert_eq(shard_assign(ia, n, 7, oa, NULL), 0);
    cr_assert_eq(shard_assign(ib, n, 7, ob, NULL), 0);
    for (size_t j = 0; j < n; j++) {
        cr_assert_eq(ia[j].cost, ib[j].cost, "job %zu: cost %g then %g", j, ia[j].cost, ib[j].cost);
        cr_assert_eq(oa[j], ob[j], "job %zu: shard %d then %d", j, oa[j], ob[j]);
    }
    free(ia), free(ib);
    expanded_free(&a), expanded_free(&b);
}

/* The kernel jobs reading a training's kv dump run on that training's shard. */
Test(shard, kv_file_readers_share_the_shard_of_their_writer)
{
    expanded e;
    expand("default.json", &e);
    shard_item *it;
    cr_assert_eq(shard_items(e.jobs, e.n_jobs, e.trains, e.n_trains, &it), 0);
    size_t n = e.n_jobs + e.n_trains, readers = 0;
    int owner[n + 1];
    cr_assert_eq(shard_assign(it, n, 16, owner, NULL), 0);
    for (size_t t = 0; t < e.n_trains; t++) {
        if (!e.trains[t].dump_kv[0])
            continue;
        for (size_t j = 0; j < e.n_jobs; j++)
            if (!strcmp(e.jobs[j].inputs.kv_file, e.trains[t].dump_kv)) {
                readers++;
                cr_assert_eq(owner[j], owner[e.n_jobs + t], "%s: reader on shard %d, writer on %d",
                             e.trains[t].dump_kv, owner[j], owner[e.n_jobs + t]);
            }
    }
    cr_assert_gt(readers, 0, "default.json should have kernel jobs on a kv dump");
    free(it);
    expanded_free(&e);
}

/* LPT's guarantee on arbitrary costs: the largest shard is within 4/3 of
 * the best possible, which is at least the mean and the costliest job; every
 * job is placed on a valid shard and the loads add up. */
Test(shard, longest_first_stays_within_four_thirds_of_any_split)
{
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + (size_t)(rand() % 60);
        int shards = 1 + rand() % 9;
        shard_item it[60];
        double biggest = 0;
        for (size_t j = 0; j < n; j++) {
            it[j].cost = (double)(rand() % 1000) / (1 + rand() % 10);
            it[j].unit = j;
            biggest = it[j].cost > biggest ? it[j].cost : biggest;
        }
        int owner[60];
        double load[9], placed[9] = {0}, sum;
        cr_assert_eq(shard_assign(it, n, shards, owner, load), 0);
        for (size_t j = 0; j < n; j++) {
            cr_assert(owner[j] >= 0 && owner[j] < shards);
            placed[owner[j]] += it[j].cost;
        }
        for (int s = 0; s < shards; s++)
            cr_assert_float_eq(placed[s], load[s], 1e-9);
        double top = max_of(load, shards, &sum), bound = sum / shards > biggest ? sum / shards : biggest;
        cr_assert_leq(top, 4.0 / 3.0 * bound + 1e-9, "trial %d: %g against a lower bound of %g", trial, top, bound);
    }
}
