/* bench --counters cachegrind: one call of a job under valgrind's cache
 * simulator, in a child process (cachegrind.h). */
#include "cachegrind.h"

#include "common/attn_error.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Appends one argument (a copy in buf) to argv. */
typedef struct {
    char *buf, **argv;
    size_t n, used;
    int argc, overflow;
} arg_list;

static void arg(arg_list *l, const char *fmt, const char *s)
{
    int len = snprintf(l->buf + l->used, l->n - l->used, fmt, s);
    if (len < 0 || l->used + (size_t)len + 1 > l->n || l->argc + 1 >= CG_ARGV_MAX) {
        l->overflow = 1;
        return;
    }
    l->argv[l->argc++] = l->buf + l->used;
    l->used += (size_t)len + 1;
}

static void arg_int(arg_list *l, const char *opt, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)v);
    arg(l, "%s", opt), arg(l, "%s", s);
}

/* The job's own options: everything that decides what the counted call does. */
static void job_args(arg_list *l, const bench_job *job)
{
    const attn_args *a = &job->args;
    char text[512];
    arg(l, "%s", "--kernel"), arg(l, "%s", job->kernel->name);
    attn_mask_format(&a->mask, text, sizeof text);
    arg(l, "%s", "--mask"), arg(l, "%s", text);
    arg(l, "%s", "--pass"), arg(l, "%s", bench_pass_name(job->pass));
    arg_int(l, "--H", a->H), arg_int(l, "--Hkv", a->H_kv), arg_int(l, "--D", a->D);
    if (a->Dv && a->Dv != a->D)
        arg_int(l, "--Dv", a->Dv);
    if (job->lens.n) { /* B and N_kv follow from the lengths */
        text[0] = '\0';
        for (int b = 0; b < job->lens.n; b++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%lld", b ? "," : "",
                     (long long)job->lens.len[b]);
        arg(l, "%s", job->lens.kind == BENCH_LENS_PADDED_SEQ ? "--seq-lens" : "--kv-lens"), arg(l, "%s", text);
        arg_int(l, "--N", a->Nq);
    } else {
        arg_int(l, "--B", a->B), arg_int(l, "--N", a->Nq), arg_int(l, "--Nkv", a->Nk);
    }
    for (int i = 0; i < a->params.n; i++) {
        snprintf(text, sizeof text, "%s=%s", a->params.key[i], a->params.val[i]);
        arg(l, "%s", "--param"), arg(l, "%s", text);
    }
    bench_inputs_format(&job->inputs, text, sizeof text);
    arg(l, "%s", "--inputs"), arg(l, "%s", text);
    arg_int(l, "--seed", (int64_t)job->seed);
}

int cg_child_argv(const bench_job *job, const char *exe, const char *out_file, char *buf, size_t n,
                  char *argv[CG_ARGV_MAX])
{
    arg_list l = {.buf = buf, .argv = argv, .n = n};
    arg(&l, "%s", "valgrind");
    arg(&l, "%s", "--tool=callgrind");
    arg(&l, "%s", "--cache-sim=yes");
    arg(&l, "%s", "--toggle-collect=bench_counted_call");
    arg(&l, "--callgrind-out-file=%s", out_file);
    arg(&l, "%s", exe);
    arg(&l, "%s", "bench");
    job_args(&l, job);
    /* one thread (valgrind runs threads one at a time, and the toggle follows the calling thread),
     * no repetitions beyond the one the counted call needs, no machine probe */
    static const char *const fixed[] = {"--threads", "1", "--reps", "1", "--warmup", "0", "--min-time", "0",
                                        "--no-peak"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        arg(&l, "%s", fixed[i]);
    argv[l.argc] = NULL;
    return l.overflow ? attn_fail(ATTN_EINVAL, "cachegrind: the job's command line is too long") : l.argc;
}

/* Runs argv with OpenBLAS and OpenMP on one thread, its output to log. */
static int run_child(char *const argv[], const char *log, int *status)
{
    static char blas[] = "OPENBLAS_NUM_THREADS=1", omp[] = "OMP_NUM_THREADS=1";
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = malloc((ne + 3) * sizeof *envp);
    if (!envp)
        return ATTN_ENOMEM;
    memcpy(envp, environ, ne * sizeof *envp);
    envp[ne] = blas, envp[ne + 1] = omp, envp[ne + 2] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc)
        return rc == ENOENT ? ATTN_EIO : ATTN_EINVAL;
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return ATTN_EIO;
    return 0;
}

/* The "events:" names and the "summary:" counts of a callgrind output, read
 * once: callgrind leaves trailing zero counts out of the summary line. */
#define CG_MAX_EVENTS 16
typedef struct {
    char name[CG_MAX_EVENTS][16];
    long long value[CG_MAX_EVENTS];
    int n;
} cg_summary;

static int cg_read(const char *file, cg_summary *sum)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    char line[1024], events[1024] = "";
    int found = 0;
    sum->n = 0;
    while (!found && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "events:", 7))
            snprintf(events, sizeof events, "%s", line + 7);
        else if (!strncmp(line, "summary:", 8) && events[0]) {
            char *es, *vs, *e = strtok_r(events, " \t\n", &es), *x = strtok_r(line + 8, " \t\n", &vs);
            for (; e && sum->n < CG_MAX_EVENTS; e = strtok_r(NULL, " \t\n", &es)) {
                snprintf(sum->name[sum->n], sizeof sum->name[0], "%.15s", e);
                sum->value[sum->n++] = x ? strtoll(x, NULL, 10) : 0;
                x = x ? strtok_r(NULL, " \t\n", &vs) : NULL;
            }
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void count_na(papi_count *c, const char *why)
{
    c->available = 0;
    snprintf(c->na, sizeof c->na, "NA:%.120s", why);
}

/* Every preset NA with one reason (the simulation did not run). */
static void all_na(papi_counts *c, const char *why)
{
    snprintf(c->status, sizeof c->status, "NA:%.120s", why);
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++)
        count_na(&c->preset[i], why);
}

/* Sums the named events of the summary into *v; 0 when one is missing. */
static int cg_sum(const cg_summary *sum, const char *const *names, long long *v)
{
    *v = 0;
    for (; *names; names++) {
        int i = 0;
        while (i < sum->n && strcmp(sum->name[i], *names))
            i++;
        if (i == sum->n)
            return 0;
        *v += sum->value[i];
    }
    return 1;
}

static void fill_counts(const char *file, papi_counts *c)
{
    static const char *const ir[] = {"Ir", NULL}, *const l1[] = {"D1mr", "D1mw", NULL},
                             *const ll[] = {"ILmr", "DLmr", "DLmw", NULL};
    cg_summary sum;
    long long v[3];
    if (!cg_read(file, &sum) || !cg_sum(&sum, ir, &v[0]) || !cg_sum(&sum, l1, &v[1]) || !cg_sum(&sum, ll, &v[2]) ||
        v[0] == 0) {
        all_na(c, CG_STATUS ": no counts in the simulator's output (the counted call did not run)");
        return;
    }
    snprintf(c->status, sizeof c->status, "%s (valgrind cache simulation of one call; 1 thread)", CG_STATUS);
    count_na(&c->preset[0], CG_STATUS " simulates no cycles");
    c->preset[1].available = 1, c->preset[1].value = v[0];
    c->preset[2].available = 1, c->preset[2].value = v[1];
    count_na(&c->preset[3], CG_STATUS " simulates L1 and the last level only");
    c->preset[4].available = 1, c->preset[4].value = v[2]; /* the simulated last level */
}

/* Whether valgrind stopped on an instruction it cannot decode: valgrind
 * (3.19 and later releases alike) has no AVX-512 decoder, so a -march=native
 * build on an AVX-512 host cannot be simulated at all. */
static int undecodable(const char *log)
{
    FILE *f = fopen(log, "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "Unrecognised instruction") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* The last non-empty line of the child's output, for the NA reason. */
static void last_line(const char *log, char *buf, size_t n)
{
    snprintf(buf, n, "no output");
    FILE *f = fopen(log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(buf, n, "%.120s", line);
    }
    if (f)
        fclose(f);
}

void cg_simulate(const bench_job *job, const char *exe_path, papi_counts *c)
{
    attn_args a = bench_job_args(job);
    a.backward = job->pass != BENCH_PASS_FWD;
    double flops = job->kernel->flops ? job->kernel->flops(&a, job->pass == BENCH_PASS_FWD ? ATTN_PASS_FWD
                                                                                             : ATTN_PASS_BWD)
                                      : 0;
    char why[160], exe[1024], dir[] = "/tmp/attnbench-cg-XXXXXX", out[64], log[64], buf[4096];
    if (flops > CG_MAX_FLOPS) {
        snprintf(why, sizeof why, "%s refused: %.3g flops > %.3g (one call under the simulator runs ~100x slower)",
                 CG_STATUS, flops, CG_MAX_FLOPS);
        all_na(c, why);
        return;
    }
    ssize_t len = exe_path ? snprintf(exe, sizeof exe, "%s", exe_path) : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0 || (size_t)len >= sizeof exe || !mkdtemp(dir)) {
        all_na(c, CG_STATUS ": cannot find the attnbench executable or make a temporary directory");
        return;
    }
    exe[len] = '\0';
    snprintf(out, sizeof out, "%s/cg.out", dir), snprintf(log, sizeof log, "%s/cg.log", dir);
    char *argv[CG_ARGV_MAX];
    int status = 0, rc = cg_child_argv(job, exe, out, buf, sizeof buf, argv);
    if (rc > 0)
        rc = run_child(argv, log, &status);
    if (rc == ATTN_EIO)
        all_na(c, CG_STATUS ": valgrind not found (Debian package valgrind)");
    else if (rc == 0 && undecodable(log))
        all_na(c, CG_STATUS ": valgrind cannot decode this build's AVX-512 code (an AVX2 build can be "
                            "simulated: docs/measurement.md)");
    else if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) > 1) {
        char last[200];
        last_line(log, last, sizeof last);
        snprintf(why, sizeof why, "%s: the simulated run failed: %.100s", CG_STATUS, last);
        all_na(c, why);
    } else
        fill_counts(out, c);
    unlink(out), unlink(log), rmdir(dir);
}
