#include "train_bench.h"

#include "harness/measure/bench.h"
#include "harness/results/csvw.h"
#include "models/model.h"
#include "models/optim.h"
#include "models/profile.h"
#include "common/rng.h"
#include "harness/measure/sysinfo.h"
#include "common/rss.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *label;
    nn_variant variant;
    nn_head_kind head;
    int64_t layers, d, heads, mlp, N, batch, vocab;
    const char *mask;  /* canonical spec, or NULL: full (causal for the lm head) */
} bench_model;

/* The two shapes of the training benchmark: an LRA-like encoder and a small causal LM. */
static const bench_model models[2] = {
    {"encoder", NN_VARIANT_ENCODER, NN_HEAD_CLASSIFY, 2, 128, 4, 512, 1024, 16, 256, NULL},
    {"lm", NN_VARIANT_LM, NN_HEAD_LM, 2, 64, 2, 256, 256, 16, 256, NULL},
};

/* The LRA speed suite's shape (LRA Table 2 runs byte-level Text at 1K-4K): the
 * long profile's Text encoder (2 layers, d_model 64, 2 heads, MLP 128,
 * vocabulary of 256 bytes + pad + CLS) with a batch of 8; N and the mask vary. */
static const bench_model text_speed = {"text", NN_VARIANT_ENCODER, NN_HEAD_CLASSIFY, 2, 64, 2, 128, 0, 8, 258, NULL};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static nn_model_cfg bench_cfg(const bench_model *bm, const char *kernel)
{
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    c.variant = bm->variant;
    c.head = bm->head, c.vocab = bm->vocab, c.n_classes = 10, c.max_len = bm->N, c.layers = bm->layers;
    c.d_model = bm->d, c.heads = bm->heads, c.mlp = bm->mlp, c.n_kernels = 1, c.loops = 1;
    c.causal = bm->head == NN_HEAD_LM;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    c.pos = NN_POS_LEARNED, c.pool = NN_POOL_CLS;
    if (bm->mask)
        snprintf(c.mask, sizeof c.mask, "%s", bm->mask);
    return c;
}

enum { WARMUP = 2, MIN_STEPS = 5 };

/* Training steps after WARMUP, at least MIN_STEPS and 3 s (at most 64):
 * ms[] the step times, *total their sum in seconds; profiling on meanwhile. */
static int time_steps(nn_model *m, const nn_batch *b, optim *opt, int threads, double ms[64], int *steps,
                      double *total)
{
    int rc = 0;
    for (int s = 0; !rc && s < WARMUP + 64 && (s < WARMUP + MIN_STEPS || *total < 3.0); s++) {
        if (s == WARMUP)
            nn_prof_reset(), nn_prof_enable(1);
        double t0 = nn_prof_now(), loss;
        int64_t correct, scored;
        optim_grad_zero(m->grads, m->n_params, threads);
        if ((rc = nn_model_forward(m, b, 1, (uint64_t)s, &loss, &correct, &scored, NULL)) ||
            (rc = nn_model_backward(m, b, (uint64_t)s, 1.0f)) || (rc = optim_step(opt, m->params, m->grads, 1e-4f)))
            break;
        if (s >= WARMUP)
            ms[(*steps)++] = 1e3 * (nn_prof_now() - t0), *total += ms[*steps - 1] * 1e-3;
    }
    nn_prof_enable(0);
    return rc;
}

/* Step times, shares and rates from the timed steps (sorted here). */
static void bench_measure(const bench_model *bm, const char *kernel, const peak_result *peak, double *ms, int steps,
                          double total, train_bench_result *res)
{
    memset(res, 0, sizeof *res);
    res->label = bm->label;
    snprintf(res->kernel, sizeof res->kernel, "%s", kernel);
    nn_model_cfg c = bench_cfg(bm, kernel);
    nn_model_describe(&c, res->model, sizeof res->model);
    res->causal = c.causal;
    attn_mask mk = nn_model_mask(&c);
    attn_mask_format(&mk, res->mask, sizeof res->mask);
    res->batch = bm->batch, res->heads = bm->heads, res->N = bm->N, res->head_dim = bm->d / bm->heads;
    qsort(ms, (size_t)steps, sizeof *ms, cmp_d);
    measure_stats *t = &res->time; /* order statistics at n/2, n/10, 9n/10 */
    t->reps = steps, t->warmup = WARMUP;
    t->median_ms = ms[steps / 2], t->p10_ms = ms[steps / 10], t->p90_ms = ms[steps * 9 / 10];
    res->flops = (nn_prof_flops(NN_PROF_GEMM) + nn_prof_flops(NN_PROF_ATTN)) / steps;
    res->gflops = res->flops / (t->median_ms * 1e-3) * 1e-9;
    res->tokens_per_s = (double)(bm->batch * bm->N) / (t->median_ms * 1e-3);
    res->gemm_share = nn_prof_seconds(NN_PROF_GEMM) / total, res->attn_share = nn_prof_seconds(NN_PROF_ATTN) / total;
    double pct = peak && peak->sgemm_gflops > 0 ? 100 * res->gflops / peak->sgemm_gflops : 0;
    res->pct_sgemm_peak = pct > 0 ? schema_num_value(pct) : schema_num_na("no same-run peak");
}

/* Times training steps of model bm with kernel `kernel` on a random batch. */
static int bench_one(const bench_model *bm, const char *kernel, int threads, const peak_result *peak,
                     train_bench_result *res)
{
    nn_model_cfg c = bench_cfg(bm, kernel);
    nn_model m;
    rss_region rss; /* the model, its plan, the optimiser and the timed steps */
    rss_region_begin(&rss);
    int rc = nn_model_init(&m, &c, 1);
    if (rc)
        return rc;
    int64_t B = bm->batch, N = bm->N, T = B * N;
    int32_t *tok = malloc(sizeof *tok * (size_t)T), *tgt = malloc(sizeof *tgt * (size_t)T),
            *lab = malloc(sizeof *lab * (size_t)B);
    attn_rng r;
    attn_rng_seed(&r, 7);
    for (int64_t i = 0; tok && tgt && i < T; i++)
        tok[i] = (int32_t)attn_rng_uint_below(&r, (uint64_t)bm->vocab), tgt[i] = (int32_t)attn_rng_uint_below(&r, 256);
    for (int64_t i = 0; lab && i < B; i++)
        lab[i] = (int32_t)attn_rng_uint_below(&r, 10);
    nn_batch b = {.B = B, .tokens = tok, .labels = lab, .targets = tgt};
    optim opt;
    optim_config oc = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f, .threads = threads};
    memset(&opt, 0, sizeof opt);
    if (!tok || !tgt || !lab)
        rc = attn_fail(ATTN_ENOMEM, "train bench: out of memory");
    if (!rc)
        rc = nn_model_plan(&m, B, N, T, threads);
    if (!rc)
        rc = optim_init(&opt, m.n_params, &oc, NULL, 0);
    double ms[64], total = 0;
    int steps = 0;
    if (!rc)
        rc = time_steps(&m, &b, &opt, threads, ms, &steps, &total);
    rss_region_sample(&rss);
    if (!rc)
        bench_measure(bm, kernel, peak, ms, steps, total, res);
    res->peak_rss_bytes = rss_region_peak_bytes(&rss);
    optim_fini(&opt);
    nn_model_free(&m);
    free(tok), free(tgt), free(lab);
    return rc;
}

void train_bench_print(FILE *f, const train_bench_result *res)
{
    double pct = res->pct_sgemm_peak.state == SCHEMA_NUM_VALUE ? res->pct_sgemm_peak.value : 0;
    fprintf(f, "%-9s %-10s %9.1f ms %10.0f tok/s %8.2f GFLOP/s %6.1f %% sgemm   gemm %4.1f %%  attention %4.1f %%  rest %4.1f %%\n",
            res->label, res->kernel, res->time.median_ms, res->tokens_per_s, res->gflops, pct, 100 * res->gemm_share,
            100 * res->attn_share, 100 * (1 - res->gemm_share - res->attn_share));
}

void train_bench_row(const train_bench_result *res, int threads, csvw_row *row)
{
    int speed = !strcmp(res->label, text_speed.label);
    bench_row_begin(row, threads, speed ? "lra_speed" : "train");
    csvw_row_set(row, ATTN_COL_TASK, "%s", speed ? "text-shape" : "synthetic");
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", res->kernel);
    csvw_row_set(row, ATTN_COL_MODEL, "%s", res->model);
    csvw_row_set(row, ATTN_COL_MASK, "%s", res->mask);
    csvw_row_set(row, ATTN_COL_PASS, "train");
    bench_row_shape(row, &(bench_shape){res->batch, res->heads, res->heads, res->N, res->N, res->head_dim,
                                        res->head_dim});
    csvw_row_set(row, ATTN_COL_PARAMS, "gemm_share=%.3f;attn_share=%.3f", res->gemm_share, res->attn_share);
    csvw_row_set(row, ATTN_COL_SEED, "7");
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "generated");
    bench_row_time(row, &res->time, "%.4g");
    csvw_row_set(row, ATTN_COL_FLOPS_ANALYTIC, "%.0f", res->flops);
    csvw_row_set(row, ATTN_COL_GFLOPS, "%.4g", res->gflops);
    csvw_row_set_schema_num(row, ATTN_COL_PCT_SGEMM_PEAK, "%.2f", &res->pct_sgemm_peak);
    csvw_row_set(row, ATTN_COL_PAPI_STATUS, "NA:not measured in training rows");
    csvw_row_set(row, ATTN_COL_TOKENS_PER_S, "%.1f", res->tokens_per_s);
    csvw_row_set(row, ATTN_COL_TRAIN_STEPS, "%d", res->time.reps);
    csvw_row_set(row, ATTN_COL_PEAK_RSS_BYTES, "%zu", res->peak_rss_bytes);
    csvw_row_set(row, ATTN_COL_STATUS, "ok");
    char id[17];
    csvw_row_job_id(row, id);
    csvw_row_set(row, ATTN_COL_JOB_ID, "%s", id);
}

int train_bench_run(const char *name, int threads, const peak_result *peak, csvw_row rows[2], FILE *table)
{
    for (int i = 0; i < 2; i++) {
        train_bench_result res;
        int rc = bench_one(&models[i], name, threads, peak, &res);
        if (rc)
            return rc;
        train_bench_print(table, &res);
        train_bench_row(&res, threads, &rows[i]);
    }
    return 0;
}

int train_bench_speed(const char *name, const char *mask, int64_t N, int threads, const peak_result *peak,
                      csvw_row *row, FILE *table)
{
    bench_model bm = text_speed;
    bm.N = N, bm.mask = mask;
    train_bench_result res;
    int rc = bench_one(&bm, name, threads, peak, &res);
    if (rc)
        return rc;
    train_bench_print(table, &res);
    train_bench_row(&res, threads, row);
    return 0;
}
