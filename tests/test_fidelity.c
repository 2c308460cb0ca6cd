/* The fidelity report (harness/measure/fidelity.h): input families do what
 * their names say, the measures are zero / one where they must be, every
 * kernel's fidelity view is consistent with its own reference, and fidelity
 * jobs write one row per measure with ids of their own. */
#include "harness/measure/bench.h"
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "harness/results/csvw.h"
#include "harness/results/fidelity_report.h"
#include "kernels/core/oracle.h"
#include "kernels/core/registry.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static attn_args shape(int64_t N, int64_t D, const char *mask)
{
    attn_args a = fx_args(1, 2, 2, N, N, D, mask, 2);
    return a;
}

Test(fidelity, exact_kernel_has_zero_error_and_unit_cosine_on_every_family)
{
    attn_args a = shape(512, 32, "causal");
    for (int f = FID_GAUSSIAN; f < FID__COUNT; f++) {
        fid_metrics m;
        cr_assert_eq(check_kernel_fidelity(&attn_kernel_flash, &a, (fid_inputs)f, 1, &m), 0);
        cr_assert_lt(m.rel_fro, 1e-5, "%s: %g", fid_inputs_names[f], m.rel_fro);
        cr_assert_gt(m.cos_min, 1 - 1e-9, "%s", fid_inputs_names[f]);
        cr_assert(isnan(m.kl) && m.kl_na[0], "flash forms no rows of its own: NA with a reason");
        cr_assert_eq(m.rows, 2 * FID_ROWS);
    }
}

/* Mean over rows of the oracle's largest attention weight. */
static double mean_peak_weight(const attn_args *a, fid_inputs f, uint64_t seed)
{
    problem p;
    cr_assert_eq(problem_make(&p, NULL, a, seed, PROBLEM_TWIN), 0);
    attn_io io = problem_io(&p);
    fid_fill(f, &p.a, seed, &io);
    problem_widen_inputs(&p);
    double sum = 0, sc = attn_scale(a);
    int64_t D = a->D, N = a->Nk;
    double *s = malloc(sizeof(double) * (size_t)N);
    for (int64_t i = 0; i < a->Nq; i++) {
        const double *q = attn_at64(&p.q64, 0, 0, i);
        double mx = -INFINITY, z = 0;
        for (int64_t j = 0; j < N; j++) {
            const double *k = attn_at64(&p.k64, 0, 0, j);
            s[j] = 0;
            for (int64_t d = 0; d < D; d++)
                s[j] += sc * q[d] * k[d];
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < N; j++)
            z += exp(s[j] - mx);
        sum += 1 / z;
    }
    free(s);
    problem_free(&p);
    return sum / (double)a->Nq;
}

Test(fidelity, peaked_inputs_concentrate_attention_and_gaussian_inputs_spread_it)
{
    attn_args a = shape(1024, 64, "full");
    double peaked = mean_peak_weight(&a, FID_PEAKED, 1), gaussian = mean_peak_weight(&a, FID_GAUSSIAN, 1);
    double longtail = mean_peak_weight(&a, FID_LONGTAIL, 1);
    cr_assert_gt(peaked, 0.3, "peaked: a planted key carries much of its row (%g)", peaked);
    cr_assert_lt(gaussian, 0.05, "gaussian: near-uniform rows (%g)", gaussian);
    cr_assert_gt(longtail, 5 * gaussian, "longtail: a few keys dominate (%g vs %g)", longtail, gaussian);
}

Test(fidelity, lowrank_queries_and_keys_live_in_an_eight_dimensional_subspace)
{
    attn_args a = shape(256, 32, "full");
    problem p;
    cr_assert_eq(problem_make(&p, NULL, &a, 5, 0), 0);
    attn_io io = problem_io(&p);
    fid_fill(FID_LOWRANK, &p.a, 5, &io);
    /* Gram matrix of the 32 columns of [Q; K] of head 0: its 9th-largest
     * eigenvalue is noise-sized against the 8th (power iteration with deflation). */
    double G[32][32] = {{0}};
    for (int t = 0; t < 2; t++)
        for (int64_t n = 0; n < 256; n++) {
            const float *x = attn_at(t ? &io.k : &io.q, 0, 0, n);
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++)
                    G[i][j] += (double)x[i] * x[j];
        }
    double ev[9];
    for (int e = 0; e < 9; e++) {
        double v[32], lam = 0;
        for (int i = 0; i < 32; i++)
            v[i] = 1.0 / (i + 1);
        for (int it = 0; it < 500; it++) {
            double w[32] = {0}, nrm = 0;
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++)
                    w[i] += G[i][j] * v[j];
            for (int i = 0; i < 32; i++)
                nrm += w[i] * w[i];
            lam = sqrt(nrm);
            for (int i = 0; i < 32; i++)
                v[i] = w[i] / lam;
        }
        ev[e] = lam;
        for (int i = 0; i < 32; i++)
            for (int j = 0; j < 32; j++)
                G[i][j] -= lam * v[i] * v[j];
    }
    cr_assert_lt(ev[8], 0.01 * ev[7], "9th eigenvalue %g vs 8th %g", ev[8], ev[7]);
    problem_free(&p);
}

/* A test kernel: flash, whose view is the oracle's own rows (and selects
 * keys by a rule the test sets), to check the measures' arithmetic. */
static int select_mode; /* 0: every key, 1: none */

static int oracle_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                       int64_t n, double *P, unsigned char *sel)
{
    int64_t D = a->D, G = a->H / a->H_kv;
    for (int64_t r = 0; r < n; r++) {
        const double *q = attn_at64(&io->q, b, h, rows[r]);
        double mx = -INFINITY, z = 0, *p = P + r * a->Nk;
        for (int64_t j = 0; j < a->Nk; j++) {
            int ok = attn_mask_allowed(&a->mask, b, h, a->q_off + rows[r], a->k_off + j);
            double s = 0;
            for (int64_t d = 0; d < D; d++)
                s += q[d] * attn_at64(&io->k, b, h / G, j)[d];
            p[j] = ok ? s * attn_scale(a) : -INFINITY;
            mx = fmax(mx, p[j]);
            sel[r * a->Nk + j] = select_mode == 0;
        }
        for (int64_t j = 0; j < a->Nk; j++)
            z += p[j] = exp(p[j] - mx);
        for (int64_t j = 0; j < a->Nk; j++)
            p[j] /= z;
    }
    return ATTN_VIEW_ROWS | ATTN_VIEW_KEYS;
}

Test(fidelity, kl_is_zero_and_recall_one_for_the_oracles_own_rows_and_recall_zero_when_nothing_is_selected)
{
    attn_kernel k = attn_kernel_flash;
    k.ref_view = oracle_view;
    attn_args a = shape(300, 32, "causal");
    fid_metrics m;
    select_mode = 0;
    cr_assert_eq(check_kernel_fidelity(&k, &a, FID_PEAKED, 2, &m), 0);
    cr_assert_lt(fabs(m.kl), 1e-9, "%g", m.kl);
    cr_assert_float_eq(m.topk_recall, 1.0, 1e-12);
    select_mode = 1;
    cr_assert_eq(check_kernel_fidelity(&k, &a, FID_PEAKED, 2, &m), 0);
    cr_assert_float_eq(m.topk_recall, 0.0, 1e-12);
}

/* Kernel k's view on a small problem (params: "k=v k=v" or NULL): its rows
 * are non-negative, sum to 1 and reproduce its own reference's output
 * (O = P V); its selected keys cover every key its rows weigh. Returns the
 * view's bits. */
static int check_view(const attn_kernel *k, const char *params)
{
    int full = (k->masks & ATTN_MASK_BIT(ATTN_MASK_FULL)) != 0, bits = 0;
    attn_args a = shape(96, 16, full ? "full" : "causal");
    if (params)
        fx_add_params(&a, params);
    fx_problem p;
    fx_make_for(&p, k, &a, 7);
    attn_io64 io = problem_io64(&p);
    int64_t rows[96], N = a.Nk, Dv = attn_dv(&a);
    for (int i = 0; i < 96; i++)
        rows[i] = i;
    double *P = malloc(sizeof(double) * 96 * (size_t)N);
    unsigned char *sel = malloc(96 * (size_t)N);
    for (int64_t h = 0; h < a.H; h++) {
        bits = k->ref_view(&p.a, &io, 0, h, rows, 96, P, sel);
        cr_assert_geq(bits, 0, "%s: %s", k->name, attn_last_error());
        for (int64_t i = 0; (bits & ATTN_VIEW_ROWS) && i < 96; i++) {
            double sum = 0, o[256] = {0};
            for (int64_t j = 0; j < N; j++) {
                double w = P[i * N + j];
                cr_assert_geq(w, 0, "%s: negative weight", k->name);
                sum += w;
                for (int64_t d = 0; d < Dv; d++)
                    o[d] += w * attn_at64(&io.v, 0, h * a.H_kv / a.H, j)[d];
                if ((bits & ATTN_VIEW_KEYS) && w > 0)
                    cr_assert(sel[i * N + j], "%s: row %ld weighs key %ld it did not select", k->name, (long)i,
                              (long)j);
            }
            /* a row before every key (a causal kernel's empty rows) weighs nothing */
            if (sum > 0)
                cr_assert_float_eq(sum, 1.0, 1e-5, "%s: row %ld sums to %g", k->name, (long)i, sum);
            for (int64_t d = 0; d < Dv; d++)
                cr_assert_float_eq(o[d], attn_at64(&p.o64, 0, h, i)[d], 1e-8, "%s %s: (P V) differs from its reference",
                                   k->name, params ? params : "");
        }
    }
    free(P);
    free(sel);
    fx_free(&p);
    return bits;
}

Test(fidelity, every_view_is_row_stochastic_and_reproduces_its_own_reference, .timeout = 120)
{
    int viewed = 0;
    for (const attn_kernel *const *kp = attn_registry(); *kp; kp++)
        if ((*kp)->ref_view)
            check_view(*kp, NULL), viewed++;
    cr_assert_geq(viewed, 3, "linear, based and landmark at least have views");
    /* landmark's top-k mode selects blocks by content: keys too */
    cr_assert_eq(check_view(attn_find_kernel("landmark"), "mode=topk k=2 l=8"), ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
}

Test(fidelity, fidelity_job_writes_one_row_per_measure_with_its_own_job_id)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "fidelity");
    j.kernel = attn_find_kernel("linear");
    j.args = shape(256, 32, "causal");
    j.seed = 1, j.inputs.family = FID_PEAKED;
    j.measure = (measure_opts){0, 1, 1, 0.0};
    bench_result res;
    csvw_row row, rows[BENCH_ROWS_MAX];
    cr_assert_eq(bench_run(&j, NULL, &res), 0);
    bench_result_row(&j, &res, &row);
    int n = bench_result_rows(&res, &row, rows);
    cr_assert_eq(n, 6);
    cr_assert(strstr(row.cell[ATTN_COL_PARAMS], "inputs=peaked"), "the family is part of the job: %s",
              row.cell[ATTN_COL_PARAMS]);
    static const char *const metrics[] = {"max_abs_err", "rel_fro_err", "cosine_mean", "cosine_min", "kl", "topk_recall"};
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(rows[i].cell[ATTN_COL_METRIC], metrics[i]);
        cr_assert_str_eq(rows[i].cell[ATTN_COL_TIME_MS_MEDIAN], row.cell[ATTN_COL_TIME_MS_MEDIAN], "rows carry the time");
        for (int k = 0; k < i; k++)
            cr_assert_str_neq(rows[i].cell[ATTN_COL_JOB_ID], rows[k].cell[ATTN_COL_JOB_ID]);
    }
    cr_assert_gt(strtod(rows[1].cell[ATTN_COL_VALUE], NULL), 0.1, "linear is far from softmax on peaked inputs");
    cr_assert(strncmp(rows[5].cell[ATTN_COL_VALUE], "NA:", 3) == 0, "linear selects no keys: %s",
              rows[5].cell[ATTN_COL_VALUE]);
}

/* A results file with fidelity rows of three configurations: the report
 * marks the front (a slower and worse point is dominated) and states the
 * target plainly when no configuration reaches it. */
static void fid_row(csvw *w, const char *kernel, const char *params, double time_ms, double err)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "fidelity");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "full");
    csvw_row_set(&r, ATTN_COL_N, "16384");
    csvw_row_set(&r, ATTN_COL_D, "64");
    csvw_row_set(&r, ATTN_COL_PARAMS, "%s", params);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%g", time_ms);
    csvw_row_set(&r, ATTN_COL_METRIC, "rel_fro_err");
    csvw_row_set(&r, ATTN_COL_VALUE, "%g", err);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    cr_assert_eq(csvw_write(w, &r), 0);
}

Test(fidelity, report_marks_the_pareto_front_and_states_an_unreached_target)
{
    char dir[] = "/tmp/attn_fidrep_XXXXXX", path[64], md[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f.csv", dir);
    snprintf(md, sizeof md, "%s/F.md", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    fid_row(&w, "linear", "inputs=peaked", 1.0, 0.5);
    fid_row(&w, "based", "window=8;inputs=peaked", 2.0, 0.6);
    fid_row(&w, "flash", "inputs=peaked", 3.0, 1e-7);
    csvw_close(&w);
    fidrep r;
    cr_assert_eq(fidrep_load(path, &r), 0);
    cr_assert_eq(r.n, 3);
    for (int i = 0; i < r.n; i++) {
        const fidrep_point *p = &r.p[i];
        cr_assert_str_eq(p->family, "peaked");
        cr_assert_eq(p->pareto, strcmp(p->kernel, "based") != 0, "%s", p->kernel);
        cr_assert_eq(p->exact, strcmp(p->kernel, "flash") == 0);
    }
    FILE *f = fopen(md, "w+");
    fidrep_markdown(&r, f);
    rewind(f);
    char text[8192] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strstr(text, "| `linear` | **no** |"), "linear never reaches 0.1: %s", text);
    fidrep_free(&r);
}
