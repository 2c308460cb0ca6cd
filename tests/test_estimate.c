/* The sweep's estimates: kernel jobs from their probed efficiency, trainings
 * from their probe and schedule, and the ETA's correction by what has run. */
#include "harness/cli/sweep_eta.h"
#include "harness/measure/bench_cost.h"
#include "harness/measure/bench_fit.h"
#include "harness/measure/measure.h"
#include "harness/train/train_probe.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(estimate, .init = quiet);

/* Fixed peaks, so the lower bounds are known numbers. */
static const peak_result peaks = {.threads = 1, .sgemm_gflops = 50, .stream_gbs = 20};

static bench_job job(const char *kernel, int64_t N, measure_opts m)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = attn_find_kernel(kernel);
    cr_assert(j.kernel);
    j.args.B = 1, j.args.H = 2, j.args.H_kv = 2, j.args.Nq = j.args.Nk = N, j.args.D = 32, j.args.threads = 1;
    cr_assert_eq(attn_mask_parse("causal", &j.args.mask), 0);
    j.seed = 1;
    j.measure = m;
    return j;
}

/* A kernel job takes at least its lower bound, at least min_time_s of
 * repetitions, and one probe serves every length of one kind of job. */
Test(estimate, kernel_jobs_cost_their_repetitions_and_share_one_probe_per_kind)
{
    bench_cost_cache c;
    bench_cost_init(&c);
    /* max_reps far above what 0.2 s needs: a fast machine must not reach the cap first */
    const measure_opts m = {.warmup = 1, .min_reps = 3, .max_reps = 1000000, .min_time_s = 0.2};
    bench_job small = job("naive", 256, m), large = job("naive", 2048, m), flash = job("flash", 256, m);
    double s_small = bench_cost_job(&small, &peaks, &c), s_large = bench_cost_job(&large, &peaks, &c);
    cr_assert_eq(c.n, 1, "one kind, one probe: %zu", c.n);
    bench_estimate lb;
    cr_assert_eq(bench_estimate_job(&large, &peaks, &lb), 0);
    cr_assert_geq(s_small, 0.2, "%g s: below min_time_s", s_small);
    cr_assert_geq(s_large, lb.seconds * 0.66, "%g s against a lower bound of %g s", s_large, lb.seconds);
    cr_assert_gt(s_large, s_small);
    bench_cost_job(&flash, &peaks, &c);
    cr_assert_eq(c.n, 2);
    bench_cost_free(&c);
}

/* An estimate's probe only times: the correctness gate (here the kernel's own
 * double reference) is left to the job's own run, which still runs it. */
Test(estimate, a_timing_only_job_skips_the_gate_and_a_job_runs_it)
{
    const measure_opts m = {.warmup = 0, .min_reps = 1, .max_reps = 1, .min_time_s = 0};
    bench_job j = job("local_linear", 64, m);
    bench_result gated, timed;
    cr_assert_eq(bench_run(&j, &peaks, &gated), 0, "%s", attn_last_error());
    j.timing_only = 1;
    cr_assert_eq(bench_run(&j, &peaks, &timed), 0, "%s", attn_last_error());
    cr_assert_eq(gated.status, BENCH_OK, "%s", gated.reason);
    cr_assert_eq(timed.status, BENCH_OK, "%s", timed.reason);
    cr_assert(gated.gated && gated.measured);
    cr_assert(!timed.gated && timed.measured);
}

/* A job its limits skip is recorded at once: it costs nothing. */
Test(estimate, a_job_over_its_limits_costs_nothing)
{
    bench_cost_cache c;
    bench_cost_init(&c);
    bench_job j = job("naive", 4096, (measure_opts){.warmup = 1, .min_reps = 3, .max_reps = 10, .min_time_s = 0});
    j.limits.max_mem_bytes = 1e6;
    cr_assert_eq(bench_cost_job(&j, &peaks, &c), 0);
    cr_assert_eq(c.n, 0, "no probe for a job that will not run");
    bench_cost_free(&c);
}

/* The training estimate adds up the probe's parts as the run spends them. */
Test(estimate, a_training_costs_its_data_steps_evaluations_and_grid)
{
    train_run_opts r;
    train_run_defaults(&r);
    r.train_n = 1000, r.valid_n = 100, r.test_n = 50;
    r.train.steps = 100, r.train.batch = 10, r.train.eval_every = 50, r.train.eval_n = 0;
    const train_probe p = {.split_s = 2, .data_s = 0.01, .step_s = 0.5, .eval_s = 0.1, .len = 128};
    double want = 3 * 2 + 0.01 * 1150 + 0.5 * 100 + 0.1 * (2 * 10 + 5);
    cr_assert_float_eq(train_probe_seconds(&r, &p), want, 1e-9);

    r.n_scales = 2, r.scale[0] = 1, r.scale[1] = 4, r.depths = 3, r.n_swaps = 1;
    double d = 64, a = 128 / (2 * d + 128), x1 = 0.1 * 5 * 1 + 2 + 0.01 * 50,
           x4 = 0.1 * 5 * 4 * (1 + 4 * a) / (1 + a) + 2 + 0.01 * 4 * 50;
    cr_assert_float_eq(train_probe_seconds(&r, &p), want + 3 * 2 * (x1 + x4), 1e-9);
}

/* A probe of a real run measures positive times of its own shape. */
Test(estimate, a_training_probe_measures_its_run)
{
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "mqar");
    cr_assert_eq(param_bag_add_list(&r.task_params, "L=16 D=2 V=72"), 0);
    r.model.layers = 1, r.model.d_model = 16, r.model.heads = 1;
    strcpy(r.model.kernels[0], "flash");
    r.model.n_kernels = 1;
    r.train.batch = 4, r.train.threads = 1;
    train_probe p;
    cr_assert_eq(train_probe_run(&r, &p), 0, "%s", attn_last_error());
    cr_assert_gt(p.step_s, 0);
    cr_assert_gt(p.eval_s, 0);
    cr_assert_geq(p.data_s, 0);
    cr_assert_eq(p.len, 16);
}

/* The ETA is the remaining estimate until enough has run to judge it, then
 * that estimate scaled by real / estimated time of the jobs done. */
Test(estimate, eta_scales_the_rest_by_how_the_done_jobs_compared)
{
    sweep_eta e;
    sweep_eta_start(&e, 100);
    cr_assert_float_eq(sweep_eta_remaining(&e), 100, 1);
    sweep_eta_done(&e, 10);
    cr_assert_float_eq(sweep_eta_remaining(&e), 90, 1, "below the judging threshold: the plain estimate");
    sweep_eta_done(&e, 30);
    e.t0 = measure_now_s() - 80; /* the 40 s estimated took 80 s: the remaining 60 s will take 120 */
    cr_assert_float_eq(sweep_eta_remaining(&e), 120, 1);
}
