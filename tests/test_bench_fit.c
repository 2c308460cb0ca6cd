/* Jobs that cannot fit or finish are refused before anything is allocated,
 * with the estimate and the limit; the estimate's parts are what a run
 * really allocates. */
#include "harness/cli/cli.h"
#include "harness/measure/bench_fit.h"
#include "harness/measure/problem.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"

#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(bench_fit, .init = quiet);

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The size a plan predicts is the size a context gets, for every kernel
 * (and a kernel refusing the problem refuses it in the plan too). */
Test(bench_fit, a_plan_sizes_the_workspace_the_context_allocates)
{
    const attn_kernel *const *reg = attn_registry();
    for (int i = 0; i < attn_registry_count(); i++) {
        const attn_kernel *k = reg[i];
        attn_args a = {.B = 1, .H = 2, .H_kv = 2, .Nq = 64, .Nk = 64, .D = 16, .threads = 2};
        attn_args_defaults(&a);
        size_t planned = 0;
        attn_ctx ctx;
        int rc_plan = attn_ctx_plan(k, &a, &planned), rc = attn_ctx_create(k, &a, &ctx);
        cr_assert_eq(rc_plan, rc, "%s: plan %d, create %d", k->name, rc_plan, rc);
        if (rc)
            continue;
        cr_assert_eq(planned, ctx.workspace_bytes, "%s: planned %zu, allocated %zu", k->name, planned,
                     ctx.workspace_bytes);
        attn_ctx_destroy(&ctx);
    }
}

static double tensor_bytes(const attn_tensor *t) { return t->data ? 4.0 * (double)(t->B * t->H * t->N * t->D) : 0; }

Test(bench_fit, problem_bytes_is_what_problem_make_allocates)
{
    const char *const kernels[] = {"naive", "deltanet", "gated_deltanet", "routing", "sinkhorn"};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++)
        for (unsigned opts = 0; opts <= PROBLEM_GRADS; opts += PROBLEM_GRADS) {
            const attn_kernel *k = attn_find_kernel(kernels[i]);
            cr_assert(k, "%s", kernels[i]);
            attn_args a = {.B = 2, .H = 2, .H_kv = 2, .Nq = 48, .Nk = 48, .D = 8, .threads = 1};
            problem p;
            cr_assert_eq(problem_make(&p, k, &a, 1, opts), 0);
            const attn_tensor *t[] = {&p.q, &p.k, &p.v, &p.o, &p.d_o, &p.dq, &p.dk, &p.dv, &p.beta, &p.gate,
                                      &p.dbeta, &p.dgate, &p.router, &p.w, &p.drouter, &p.dw};
            double made = 4.0 * (double)(a.B * a.H * a.Nq);
            for (size_t j = 0; j < sizeof t / sizeof *t; j++)
                made += tensor_bytes(t[j]);
            problem_free(&p);
            cr_assert_float_eq(problem_bytes(k, &a, opts), made, 0.5, "%s opts %u", kernels[i], opts);
        }
}

Test(bench_fit, flash_at_16m_tokens_is_refused_quickly_with_an_estimate)
{
    double t0 = now_s();
    attn_clear_error();
    int rc = cmd_bench(ARGC("bench", "--kernel", "flash", "--N", "16777216"),
                       ARGV("bench", "--kernel", "flash", "--N", "16777216"));
    const char *msg = attn_last_error();
    cr_assert_eq(rc, 2, "exit code %d: %s", rc, msg);
    cr_assert(strstr(msg, "kernel 'flash' N=16777216") && strstr(msg, " at least ") && strstr(msg, "> --max-"),
              "%s", msg);
    cr_assert(!strchr(msg, '\n'), "%s", msg);
    cr_assert_lt(now_s() - t0, 60, "refused after %.1f s", now_s() - t0);
}

/* With the memory allowed, the time estimate refuses it: days of calls. */
Test(bench_fit, a_job_above_max_time_is_refused_with_its_time_estimate)
{
    char *argv[] = {"bench", "--kernel", "flash", "--N", "1048576", "--H", "1", "--D", "16", "--max-mem", "1e15",
                    "--max-time", "600", "--no-peak", NULL};
    attn_clear_error();
    cr_assert_eq(cmd_bench(14, argv), 2);
    const char *msg = attn_last_error();
    cr_assert(strstr(msg, "takes at least") && strstr(msg, "calls of") && strstr(msg, "> --max-time 600 s"), "%s", msg);
}

/* Run in a child, whose peak RSS is its own: the refused job's 1 GB of
 * inputs must never have been allocated. */
Test(bench_fit, a_naive_job_above_max_mem_is_refused_without_allocating)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char *argv[] = {"bench", "--kernel", "naive", "--N", "131072", "--param", "max_ws_mib=1000000",
                        "--max-mem", "2e9", "--no-peak", NULL};
        int rc = cmd_bench(10, argv);
        _exit(rc == 2 && strstr(attn_last_error(), "> --max-mem 2 GB") ? 0 : 1);
    }
    int status;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "not refused with the estimate (status %d)", status);
    cr_assert_lt(ru.ru_maxrss, 256 * 1024, "peak RSS %ld KiB: the inputs were allocated", ru.ru_maxrss);
}

typedef struct {
    int skipped_with_estimate, ok;
} status_tally;

static int tally_status(const csvw_row *row, void *ud)
{
    status_tally *t = ud;
    const char *st = row->cell[ATTN_COL_STATUS];
    t->skipped_with_estimate += !strncmp(st, "skipped:", 8) && strstr(st, "needs at least") && strstr(st, "> --max-mem 4 MB");
    t->ok += !strcmp(st, "ok");
    return 0;
}

Test(bench_fit, a_sweep_writes_a_skipped_row_with_the_estimate_and_goes_on, .timeout = 300)
{
    char dir[] = "/tmp/attn_fitXXXXXX", cfg[64], csv[96];
    cr_assert(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/c.json", dir);
    snprintf(csv, sizeof csv, "%s/fit.csv", dir);
    FILE *f = fopen(cfg, "w");
    /* naive's tensors at N=4096: 8 MB > 4 MB; at N=64 they fit and the job runs */
    fputs("{\"name\":\"fit\",\"max_mem_bytes\":4e6,\"measure\":{\"warmup\":0,\"min_reps\":1,\"min_time_s\":0,"
          "\"max_reps\":1},\"suites\":[{\"suite\":\"fit\",\"kernels\":[\"naive\"],\"H\":[1],\"N\":[4096,64],"
          "\"D\":[64]}]}", f);
    fclose(f);
    int rc = cmd_sweep(5, ARGV("sweep", "--config", cfg, "--results", dir));
    cr_assert_eq(rc, 0, "%s", attn_last_error());
    status_tally t = {0};
    cr_assert_eq(csvw_read_rows(csv, tally_status, &t), 2, "%s", attn_last_error());
    cr_assert_eq(t.skipped_with_estimate, 1);
    cr_assert_eq(t.ok, 1, "the fitting job ran after the skipped one");
    const char *const made[] = {"c.json", "fit.csv", "peak.csv"};
    for (size_t i = 0; i < sizeof made / sizeof *made; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, made[i]);
        unlink(path);
    }
    rmdir(dir);
}
