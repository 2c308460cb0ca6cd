/* The memory-budget mode: every kernel that claims it plans a workspace within
 * the budget (measured on the context it allocates) and computes what it
 * computes without one; a budget below every setting is refused with the
 * least one it can meet, which is then accepted; bench and sweep rows name
 * the budget and the sizes; a kernel that does not claim the mode is skipped. */
#include "harness/cli/cli.h"
#include "harness/measure/config.h"
#include "harness/measure/problem.h"
#include "harness/results/csvw.h"
#include "kernels/core/mem_budget.h"
#include "kernels/core/registry.h"

#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(mem_budget, .init = quiet);

/* A small causal problem the kernel takes: a decode kernel gets a few
 * queries over a longer cache, a GQA kernel two query heads per KV head. */
static attn_args case_args(const attn_kernel *k)
{
    int decode = (k->flags & ATTN_DECODE) && !(k->flags & ATTN_TRAINABLE);
    attn_args a = {.B = 2, .H = 2, .H_kv = k->flags & ATTN_GQA ? 1 : 2, .Nq = decode ? 4 : 160,
                   .Nk = decode ? 300 : 160, .D = 32, .threads = 2,
                   .mask = attn_mask_default(ATTN_MASK_CAUSAL)};
    attn_args_defaults(&a);
    return a;
}

/* O of the kernel on p under args a, into out (Nq x Dv per head, in order); the
 * measured workspace of the context into *ws. */
static void run_forward(const attn_kernel *k, const attn_args *a, problem *p, float *out, size_t *ws)
{
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(k, a, &ctx), 0, "%s: %s", k->name, attn_last_error());
    *ws = ctx.workspace_bytes;
    attn_io io = problem_io(p);
    cr_assert_eq(k->forward(&ctx, &io), 0, "%s: %s", k->name, attn_last_error());
    int64_t rows = attn_o_rows(k, a), dv = attn_dv(a), n = 0;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < rows; i++)
                for (int64_t d = 0; d < dv; d++)
                    out[n++] = attn_at(&p->o, b, h, i)[d];
    attn_ctx_destroy(&ctx);
}

/* The largest difference relative to the largest value of ref. */
static double rel_diff(const float *x, const float *ref, size_t n)
{
    double diff = 0, top = 1e-30;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)x[i] - ref[i]));
        top = fmax(top, fabs((double)ref[i]));
    }
    return diff / top;
}

/* The least budget the kernel can meet on a, from a refusal of 1 byte. */
static size_t least_budget(const attn_kernel *k, const attn_args *a)
{
    attn_args t = *a;
    t.mem_budget = 1;
    attn_budget_choice c;
    cr_assert_eq(attn_budget_fit(k, &t, &c), ATTN_EUNSUPPORTED, "%s: 1 byte was not refused", k->name);
    char want[64];
    snprintf(want, sizeof want, "least budget it can meet is %zu B", c.least);
    cr_assert(strstr(attn_last_error(), want), "%s: the refusal does not name %zu B: %s", k->name, c.least,
              attn_last_error());
    return c.least;
}

static void check_kernel(const attn_kernel *k)
{
    attn_args a = case_args(k);
    problem p;
    cr_assert_eq(problem_make(&p, k, &a, 7, 0), 0, "%s: %s", k->name, attn_last_error());
    size_t n = (size_t)(a.B * a.H * attn_o_rows(k, &a) * attn_dv(&a)), ws0, least = least_budget(k, &a);
    float *ref = malloc(n * sizeof *ref), *out = malloc(n * sizeof *out);
    run_forward(k, &a, &p, ref, &ws0);
    cr_assert_lt(least, ws0, "%s: no setting plans less than the defaults (%zu B)", k->name, ws0);
    /* the least, between it and the defaults, just below the defaults, the defaults, far above */
    size_t budgets[] = {least, (size_t)sqrt((double)least * (double)ws0), ws0 - 1, ws0, (size_t)16 << 20};
    for (size_t i = 0; i < sizeof budgets / sizeof *budgets; i++) {
        attn_args b = a;
        b.mem_budget = budgets[i];
        attn_budget_choice c;
        cr_assert_eq(attn_budget_fit(k, &b, &c), 0, "%s budget %zu: %s", k->name, budgets[i], attn_last_error());
        size_t ws;
        memset(out, 0, n * sizeof *out);
        run_forward(k, &b, &p, out, &ws);
        cr_assert_leq(ws, budgets[i], "%s: the context allocated %zu B > budget %zu B", k->name, ws, budgets[i]);
        cr_assert_eq(ws, c.workspace, "%s: the search planned %zu B, the context has %zu B", k->name, c.workspace,
                     ws);
        double err = rel_diff(out, ref, n);
        cr_assert_lt(err, 1e-5, "%s budget %zu (%s=%lld): output differs from the unbudgeted one by %g", k->name,
                     budgets[i], c.name[0], (long long)c.value[0], err);
    }
    free(ref), free(out);
    problem_free(&p);
}

Test(mem_budget, every_claiming_kernel_fits_its_budget_and_computes_the_unbudgeted_output, .timeout = 600)
{
    int claimed = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++)
        if ((*k)->budget_params) {
            check_kernel(*k);
            claimed++;
        }
    cr_assert_geq(claimed, 6, "only %d kernels claim the mode", claimed);
}

Test(mem_budget, the_kernels_named_in_the_docs_claim_the_mode)
{
    const char *const names[] = {"flash", "decode", "lean", "linear", "gla", "deltanet", "local_linear"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const attn_kernel *k = attn_find_kernel(names[i]);
        cr_assert(k && k->budget_params, "%s does not claim the memory-budget mode", names[i]);
    }
}

Test(mem_budget, a_kernel_that_does_not_claim_the_mode_refuses_a_budgeted_problem)
{
    const attn_kernel *k = attn_find_kernel("naive");
    cr_assert(k && !k->budget_params);
    attn_args a = case_args(k);
    a.mem_budget = (uint64_t)1 << 30;
    size_t ws;
    cr_assert_eq(attn_ctx_plan(k, &a, &ws), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "does not claim the memory-budget mode"), "%s", attn_last_error());
}

Test(mem_budget, sizes_the_params_give_are_kept_and_judged_against_the_budget)
{
    const attn_kernel *k = attn_find_kernel("flash");
    attn_args a = case_args(k);
    cr_assert_eq(param_bag_add(&a.params, "bc=512"), 0);
    a.mem_budget = least_budget(k, &a);
    attn_budget_choice c;
    cr_assert_eq(attn_budget_fit(k, &a, &c), 0, "%s", attn_last_error());
    cr_assert_str_eq(param_bag_get(&a.params, "bc"), "512");
    cr_assert_eq(c.value[1], 512);
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

typedef struct {
    int flash_ok, naive_skipped;
} row_tally;

static int tally_row(const csvw_row *row, void *ud)
{
    row_tally *t = ud;
    const char *kn = row->cell[ATTN_COL_KERNEL], *params = row->cell[ATTN_COL_PARAMS], *st = row->cell[ATTN_COL_STATUS];
    int budget = strstr(params, "mem_budget=262144") != NULL;
    t->flash_ok += !strcmp(kn, "flash") && budget && strstr(params, "br=") && strstr(params, "bc=") && !strcmp(st, "ok");
    t->naive_skipped += !strcmp(kn, "naive") && budget && !strncmp(st, "skipped:", 8) &&
                        strstr(st, "does not claim the memory-budget mode");
    return 0;
}

Test(mem_budget, bench_rows_name_the_budget_and_sizes_and_skip_kernels_without_the_mode, .timeout = 300)
{
    char dir[] = "/tmp/attn_budgetXXXXXX", csv[96];
    cr_assert(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/b.csv", dir);
    cr_redirect_stdout();
    int rc = cmd_bench(ARGC("bench", "--kernel", "flash,naive", "--N", "512", "--H", "2", "--D", "32", "--mem-budget",
                            "262144", "--threads", "2", "--warmup", "0", "--reps", "1", "--min-time", "0", "--no-peak",
                            "--out", csv),
                       ARGV("bench", "--kernel", "flash,naive", "--N", "512", "--H", "2", "--D", "32", "--mem-budget",
                            "262144", "--threads", "2", "--warmup", "0", "--reps", "1", "--min-time", "0", "--no-peak",
                            "--out", csv));
    cr_assert_eq(rc, 0, "%s", attn_last_error());
    row_tally t = {0};
    cr_assert_geq(csvw_read_rows(csv, tally_row, &t), 2, "%s", attn_last_error());
    cr_assert_eq(t.flash_ok, 1, "no ok flash row naming mem_budget, br and bc");
    cr_assert_eq(t.naive_skipped, 1, "no skipped naive row saying it does not claim the mode");
    unlink(csv);
    rmdir(dir);
}

Test(mem_budget, bench_refuses_a_budget_no_setting_meets_with_the_least_one_and_accepts_that_one, .timeout = 300)
{
    cr_redirect_stdout();
    attn_clear_error();
    cr_assert_eq(cmd_bench(ARGC("bench", "--kernel", "linear", "--N", "256", "--H", "2", "--D", "32", "--mask",
                                "causal", "--mem-budget", "64", "--no-peak"),
                           ARGV("bench", "--kernel", "linear", "--N", "256", "--H", "2", "--D", "32", "--mask",
                                "causal", "--mem-budget", "64", "--no-peak")),
                 2);
    const char *msg = strstr(attn_last_error(), "least budget it can meet is ");
    cr_assert(msg, "%s", attn_last_error());
    char least[32];
    snprintf(least, sizeof least, "%llu", strtoull(msg + strlen("least budget it can meet is "), NULL, 10));
    int rc = cmd_bench(ARGC("bench", "--kernel", "linear", "--N", "256", "--H", "2", "--D", "32", "--mask", "causal",
                            "--mem-budget", least, "--warmup", "0", "--reps", "1", "--min-time", "0", "--no-peak"),
                       ARGV("bench", "--kernel", "linear", "--N", "256", "--H", "2", "--D", "32", "--mask", "causal",
                            "--mem-budget", least, "--warmup", "0", "--reps", "1", "--min-time", "0", "--no-peak"));
    cr_assert_eq(rc, 0, "budget %s: %s", least, attn_last_error());
}

Test(mem_budget, a_config_list_of_budgets_is_one_job_each_with_the_sizes_chosen_under_it)
{
    cfg_config c;
    cr_assert_eq(cfg_parse("x.json",
                           "{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"flash\",\"naive\"],"
                           "\"masks\":[\"causal\"],\"H\":[2],\"N\":[256],\"D\":[32],"
                           "\"mem_budget_bytes\":[65536,1048576]}]}",
                           &c),
                 0, "%s", attn_last_error());
    cfg_job *j;
    size_t n;
    cr_assert_eq(cfg_expand(&c, &j, &n), 0, "%s", attn_last_error());
    cr_assert_eq(n, 4);
    int flash_fitted = 0, naive_budgeted = 0;
    for (size_t i = 0; i < n; i++) {
        const attn_args *a = &j[i].job.args;
        cr_assert(a->mem_budget == 65536 || a->mem_budget == 1048576, "job %zu: budget %llu", i,
                  (unsigned long long)a->mem_budget);
        if (!strcmp(j[i].job.kernel->name, "flash")) {
            size_t ws;
            flash_fitted += param_bag_get(&a->params, "br") && param_bag_get(&a->params, "bc") &&
                            !attn_ctx_plan(j[i].job.kernel, a, &ws) && ws <= a->mem_budget;
        } else
            naive_budgeted += a->params.n == 0;
    }
    cr_assert_eq(flash_fitted, 2, "flash's jobs do not carry sizes that fit their budgets");
    cr_assert_eq(naive_budgeted, 2);
    free(j);
    cfg_free(&c);
}
