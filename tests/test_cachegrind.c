/* bench --counters cachegrind: the counted call of a job re-run in a child
 * `attnbench bench` under valgrind's cache simulator fills the instruction
 * and miss columns, labelled simulated; what the simulator does not model,
 * and jobs too large for it, say NA and why. */
#include "harness/measure/cachegrind.h"
#include "kernels/core/registry.h"
#include "sanitize.h"

#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The attnbench executable beside this test runner (both are in build/). */
static const char *attnbench_exe(void)
{
    static char path[1024];
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/attnbench", dirname(self));
    return path;
}

static bench_job small_job(const char *kernel, int64_t N, const char *params)
{
    bench_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.suite, sizeof job.suite, "kernels");
    job.kernel = attn_find_kernel(kernel);
    cr_assert(job.kernel);
    job.args.B = 1, job.args.H = 1, job.args.H_kv = 1, job.args.Nq = N, job.args.Nk = N, job.args.D = 16;
    job.args.threads = 1, job.seed = 1;
    cr_assert_eq(attn_mask_parse("causal", &job.args.mask), 0);
    if (params)
        cr_assert_eq(param_bag_add_list(&job.args.params, params), 0);
    return job;
}

Test(cachegrind, the_child_runs_exactly_the_job_on_one_thread_collecting_in_the_counted_call)
{
    bench_job job = small_job("flash", 64, "br=16");
    char buf[4096], *argv[CG_ARGV_MAX], line[4096] = "";
    int argc = cg_child_argv(&job, "/x/attnbench", "/tmp/o", buf, sizeof buf, argv);
    cr_assert_gt(argc, 0);
    for (int i = 0; i < argc; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " %s", argv[i]);
    static const char *const want[] = {" --toggle-collect=bench_counted_call", " --cache-sim=yes",
                                       " /x/attnbench bench --kernel flash --mask causal", " --N 64 --Nkv 64",
                                       " --param br=16", " --threads 1 ", " --reps 1 "};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(line, want[i]), "'%s' lacks '%s'", line, want[i]);
    cr_assert_null(argv[argc]);
}

Test(cachegrind, a_simulated_call_fills_instructions_and_misses_labelled_sim, .timeout = 120)
{
    if (SANITIZED) /* valgrind cannot run an AddressSanitizer binary; the normal build runs this */
        cr_skip_test("valgrind does not run ASan binaries");
    papi_counts c[2];
    const int64_t N[2] = {64, 256};
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        bench_job job = small_job("flash", N[i], NULL);
        cg_simulate(&job, attnbench_exe(), &c[i]);
        if (strstr(c[i].status, "cannot decode")) /* an AVX-512 build: valgrind stops on its first instruction */
            cr_skip_test("%s", c[i].status);
        cr_assert(!strncmp(c[i].status, "sim:cachegrind", 14), "N=%lld: status '%s'", (long long)N[i], c[i].status);
        cr_assert(c[i].preset[1].available && c[i].preset[1].value > 0, "instructions");
        cr_assert(c[i].preset[2].available && c[i].preset[4].available, "L1 and last-level misses");
        cr_assert(!c[i].preset[0].available && strstr(c[i].preset[0].na, "no cycles"), "%s", c[i].preset[0].na);
        cr_assert(!c[i].preset[3].available && strstr(c[i].preset[3].na, "last level only"), "%s", c[i].preset[3].na);
    }
    /* causal attention's work grows as N^2: 16x the pairs, well over 4x the instructions */
    cr_assert_gt(c[1].preset[1].value, 4 * c[0].preset[1].value, "%lld vs %lld instructions", c[1].preset[1].value,
                 c[0].preset[1].value);
}

Test(cachegrind, a_job_too_large_for_the_simulator_says_na_with_its_size)
{
    bench_job job = small_job("flash", 1 << 16, NULL);
    job.args.H = 8, job.args.H_kv = 8, job.args.D = 128;
    papi_counts c;
    memset(&c, 0, sizeof c);
    cg_simulate(&job, attnbench_exe(), &c);
    cr_assert(strstr(c.status, "NA:sim:cachegrind refused") && strstr(c.status, "flops"), "%s", c.status);
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++)
        cr_assert(!c.preset[i].available, "preset %d", i);
}
