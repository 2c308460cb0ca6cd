/* The cost model of ring and ulysses (harness/measure/cp_model.h) on cases
 * with closed-form answers, no timing: a free link gives efficiency 1; a
 * slow link makes ring bandwidth-bound with the step time of the transfer;
 * a latency-only link makes ulysses pay 2 (P-1) latencies; the link fit
 * recovers the latency and bandwidth that made its data. */
#include "harness/measure/cp_model.h"
#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

TestSuite(cp_model);

/* a equals b to 1e-9 relative (sums of a few products, no cancellation) */
#define expect_close(a, b) cr_expect_float_eq((a), (b), 1e-9 * fabs((double)(b)), "%s = %.17g, expected %.17g", #a, (double)(a), (double)(b))

/* One measured rate: R FLOP/s at every block size. */
static cpm_machine machine(double latency_s, double bandwidth_Bps, double R)
{
    return (cpm_machine){.latency_s = latency_s, .bandwidth_Bps = bandwidth_Bps, .n_rates = 1, .rows = {1024},
                         .flops_per_s = {R}};
}

static cpm_problem problem(cpm_kind kind, int causal, int64_t N, int64_t P)
{
    return (cpm_problem){.kind = kind, .B = 1, .H = 1024, .H_kv = 1024, .N = N, .D = 64, .causal = causal, .P = P};
}

static cpm_prediction predict(const cpm_machine *m, const cpm_problem *p)
{
    cpm_prediction o;
    cr_assert_eq(cpm_predict(m, p, &o), 0);
    cr_assert(o.feasible, "%s P=%lld N=%lld: %s", cpm_kind_names[p->kind], (long long)p->P, (long long)p->N, o.why);
    return o;
}

Test(cp_model, free_link_gives_efficiency_one_for_both_kernels_at_every_P)
{
    cpm_machine m = machine(0, INFINITY, 1e11);
    for (int kind = 0; kind < 2; kind++)
        for (int causal = 0; causal < 2; causal++)
            for (int64_t P = 1; P <= 1024; P *= 2) {
                cpm_problem p = problem((cpm_kind)kind, causal, 1 << 20, P);
                cpm_prediction o = predict(&m, &p);
                cr_expect_float_eq(o.efficiency, 1.0, 1e-12, "%s causal=%d P=%lld: %g", cpm_kind_names[kind],
                                   causal, (long long)P, o.efficiency);
                cr_expect_eq(o.exposed_s, 0.0);
                cr_expect_eq(o.bound, CPM_COMPUTE_BOUND);
            }
}

Test(cp_model, one_rank_time_is_the_flops_over_the_rate)
{
    cpm_machine m = machine(1e-6, 1e9, 2e10);
    cpm_problem p = problem(CPM_RING, 1, 4096, 4);
    cpm_prediction o = predict(&m, &p);
    double flops = 4.0 * 1024 * 64 * 4096.0 * 4097.0 / 2;
    expect_close(cpm_flops(&p), flops);
    expect_close(o.one_rank_s, flops / 2e10);
}

Test(cp_model, ring_with_fast_link_is_compute_bound_and_hides_all_communication)
{
    /* a step computes N^2/P^2 pairs x 4 D H at 1e11: 1024^2 x 256 x 1024 / 1e11 s ~ 2.7 ms;
     * its 2 x 1024 x 1024 x 64 x 4 B message at 1e12 B/s: 0.5 ms */
    cpm_machine m = machine(1e-6, 1e12, 1e11);
    cpm_problem p = problem(CPM_RING, 0, 8192, 8);
    cpm_prediction o = predict(&m, &p);
    cr_expect_eq(o.bound, CPM_COMPUTE_BOUND);
    cr_expect_eq(o.exposed_s, 0.0);
    expect_close(o.overlap, 1.0);
    expect_close(o.efficiency, 1.0);
    expect_close(o.comm_s, 7 * (1e-6 + 2.0 * 1024 * 1024 * 64 * 4 / 1e12));
}

Test(cp_model, ring_with_slow_link_is_bandwidth_bound_each_step_lasting_its_transfer)
{
    cpm_machine m = machine(0, 1e8, 1e12);
    cpm_problem p = problem(CPM_RING, 0, 8192, 8);
    cpm_prediction o = predict(&m, &p);
    double msg = 2.0 * 1024 * (8192 / 8) * 64 * 4, send = msg / 1e8, step = o.one_rank_s / 64;
    cr_assert_gt(send, step);
    cr_expect_eq(o.bound, CPM_BANDWIDTH_BOUND);
    expect_close(o.bytes, 7 * msg);
    /* P steps: the last computes alone, the others last as long as their transfer */
    expect_close(o.time_s, step + 7 * send);
    expect_close(o.efficiency, o.one_rank_s / (8 * (step + 7 * send)));
    expect_close(o.overlap, step / send);
}

Test(cp_model, ulysses_pays_two_all_to_alls_of_latency_and_bytes_with_no_overlap)
{
    cpm_machine lat = machine(1e-3, INFINITY, 1e11);
    cpm_problem p = problem(CPM_ULYSSES, 1, 65536, 16);
    cpm_prediction o = predict(&lat, &p);
    expect_close(o.comm_s, 2 * 15 * 1e-3);
    expect_close(o.time_s, o.one_rank_s / 16 + 2 * 15 * 1e-3);
    expect_close(o.overlap, 0.0);
    cpm_machine bw = machine(0, 1e9, 1e15); /* so fast a compute that the link decides */
    o = predict(&bw, &p);
    cr_expect_eq(o.bound, CPM_BANDWIDTH_BOUND);
    expect_close(o.comm_s, cpm_bytes_per_rank(&p, 0) / 1e9);
    expect_close(o.exposed_s, o.comm_s);
}

Test(cp_model, latency_dominates_small_ring_messages)
{
    cpm_machine m = machine(1.0, 1e12, 1e15);
    cpm_problem p = problem(CPM_RING, 1, 2048, 4);
    cpm_prediction o = predict(&m, &p);
    cr_expect_eq(o.bound, CPM_LATENCY_BOUND);
    cr_expect_lt(o.efficiency, 1e-3);
}

Test(cp_model, ulysses_beyond_the_heads_and_ring_beyond_the_chunks_are_infeasible_by_name)
{
    cpm_machine m = machine(0, INFINITY, 1e11);
    cpm_problem p = problem(CPM_ULYSSES, 1, 1 << 20, 2048);
    cpm_prediction o;
    cr_assert_eq(cpm_predict(&m, &p, &o), 0);
    cr_expect_not(o.feasible);
    cr_expect(strstr(o.why, "H=1024") != NULL, "%s", o.why);
    p = problem(CPM_RING, 1, 3000, 1024);
    cr_assert_eq(cpm_predict(&m, &p, &o), 0);
    cr_expect_not(o.feasible);
    cr_expect(strstr(o.why, "N=3000") != NULL, "%s", o.why);
}

Test(cp_model, rate_is_interpolated_in_log_rows_and_clamped_outside)
{
    cpm_machine m = {.n_rates = 2, .rows = {256, 4096}, .flops_per_s = {1e9, 5e9}, .bandwidth_Bps = 1};
    expect_close(cpm_rate(&m, 64), 1e9);
    expect_close(cpm_rate(&m, 1024), 3e9); /* halfway in log2: 8, 10, 12 */
    expect_close(cpm_rate(&m, 1 << 20), 5e9);
}

Test(cp_model, link_fit_recovers_latency_and_bandwidth_of_exact_data)
{
    double bytes[9], t[9];
    for (int i = 0; i < 9; i++)
        bytes[i] = 1024.0 * (1 << (2 * i)), t[i] = 2e-6 + bytes[i] / 5e9;
    double lat, bw;
    cr_assert_eq(cpm_fit_link(bytes, t, 9, &lat, &bw), 0);
    cr_expect_float_eq(lat, 2e-6, 1e-6 * 2e-6, "%g", lat);
    cr_expect_float_eq(bw, 5e9, 1e-6 * 5e9, "%g", bw);
}

Test(cp_model, link_fit_refuses_times_that_do_not_grow)
{
    double bytes[] = {1e3, 1e6}, t[] = {1e-3, 1e-3}, lat, bw;
    cr_expect_eq(cpm_fit_link(bytes, t, 2, &lat, &bw), ATTN_EINVAL);
}
