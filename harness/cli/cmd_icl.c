/* attnbench icl: the closed-form baselines of the in-context regression
 * suite (docs/icl.md) on held-out prompts, as rows of results/icl.csv. */
#include "cli.h"

#include "common/options.h"
#include "harness/results/icl_rows.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    param_bag task_params;
    int64_t prompts;
    uint64_t seed;
    const char *out;
} icl_opts;

#define AT(f) offsetof(icl_opts, f)
static const opt_def icl_table[] = {
    {.name = "task_params", .cli = "task-param", .type = OPT_PARAMS, .offset = AT(task_params), .metavar = "K=V",
     .help = "icl_linreg parameter (repeatable): d, points, sigma ('attnbench list tasks')"},
    {.name = "prompts", .type = OPT_INT, .offset = AT(prompts), .def = 1000, .lo = 1, .hi = 1 << 24,
     .help = "held-out prompts (the test split) averaged at every k"},
    {.name = "seed", .type = OPT_UINT, .offset = AT(seed), .def = 1, .lo = 0, .hi = (double)INT64_MAX,
     .help = "data seed (the test split of a training with this data seed holds the same prompts)"},
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .metavar = "FILE", .def_str = "results/icl.csv",
     .help = "results CSV the rows are appended to"},
    {0},
};
#undef AT

static const char usage_head[] =
    "usage: attnbench icl [--task-param d=8 --task-param points=41 --task-param sigma=0] [--prompts N]\n"
    "                     [--seed S] [--out FILE]\n"
    "The closed-form baselines of in-context linear regression in double on the held-out\n"
    "prompts: zero, least squares (minimum norm below d examples), ridge (lambda = sigma^2, the\n"
    "posterior mean under the prompts' prior; = least squares when sigma = 0), averaging\n"
    "w = (1/k) sum y_j x_j, and 3-nearest-neighbours. One row per (baseline, k), metric sq_err =\n"
    "E[(y_hat - y)^2] / d with its 95 % interval; a table on stdout. Rows the file holds\n"
    "already (same settings, prompts and seed) are not written again.\n";

static void print_table(const icl_linreg_cfg *c, const icl_curve curves[ICL_BASELINES])
{
    printf("%4s", "k");
    for (int b = 0; b < ICL_BASELINES; b++)
        printf(" %15s", icl_baseline_names[b] + strlen("baseline_"));
    printf("\n");
    for (int64_t k = 0; k < c->points; k++) {
        printf("%4lld", (long long)k);
        for (int b = 0; b < ICL_BASELINES; b++) {
            double m, lo, hi;
            icl_curve_stat(&curves[b], k, c->d, &m, &lo, &hi);
            printf(" %8.4f+-%5.3f", m, hi - m);
        }
        printf("\n");
    }
}

int cmd_icl(int argc, char **argv)
{
    icl_opts o;
    memset(&o, 0, sizeof o);
    opt_defaults(icl_table, &o);
    int rc;
    if (cli_parse_table("icl", icl_table, &o, argc, argv, usage_head, "unexpected argument (all options have names)",
                        &rc))
        return rc;
    icl_linreg_cfg c;
    task_data t;
    if (icl_linreg_cfg_read(&o.task_params, &c) ||
        task_icl_linreg.make(&o.task_params, TASK_TEST, o.seed, o.prompts, NULL, &t))
        return cli_report("icl");
    icl_curve curves[ICL_BASELINES];
    double lambda = c.sigma * c.sigma;
    rc = icl_baseline_curves(&t, lambda, curves);
    icl_rows_id id = {.model = "", .pass = "eval", .dtype = "fp64", .task = &c, .lambda = lambda, .prompts = o.prompts,
                      .seed = o.seed, .threads = 1};
    const char *out = o.out ? o.out : "results/icl.csv";
    int written = 0;
    if (!rc)
        rc = icl_baseline_rows_write(out, &id, curves, &written);
    if (!rc) {
        print_table(&c, curves);
        fprintf(stderr, "icl: %d rows appended to %s (%lld already there)\n", written, out,
                (long long)(ICL_BASELINES * c.points - written));
    }
    for (int b = 0; b < ICL_BASELINES; b++)
        icl_curve_free(&curves[b]);
    task_data_free(&t);
    return rc ? cli_report("icl") : 0;
}
