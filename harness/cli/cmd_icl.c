/* attnbench icl: the in-context regression suite (docs/icl.md). The
 * closed-form baselines on the held-out prompts, then, for every kernel
 * named, a causal model trained on the task and measured on the same
 * prompts; one row per (predictor, k) in results/icl.csv. Options come from
 * the command line or a JSON config of the same keys (configs/icl.json). */
#include "cli.h"

#include "common/options.h"
#include "harness/results/icl_rows.h"
#include "harness/train/icl_train.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ICL_MAX_KERNELS 16

typedef struct {
    param_bag task_params;
    int64_t prompts;
    uint64_t seed;
    const char *out, *config;
    char kernels[256];
    icl_train_opts train;
} icl_opts;

#define AT(f) offsetof(icl_opts, f)
static const opt_def icl_table[] = {
    {.name = "config", .type = OPT_ARG, .offset = AT(config), .metavar = "FILE",
     .help = "a JSON object of these options' names (configs/icl.json); the command line overrides it "
             "(a task parameter given in both is an error)"},
    {.name = "task_params", .cli = "task-param", .type = OPT_PARAMS, .offset = AT(task_params), .metavar = "K=V",
     .help = "icl_linreg parameter (repeatable): d (8), points (17), sigma (0)"},
    {.name = "prompts", .type = OPT_INT, .offset = AT(prompts), .def = 1000, .lo = 1, .hi = 1 << 24,
     .help = "held-out prompts (the test split) averaged at every k"},
    {.name = "seed", .type = OPT_UINT, .offset = AT(seed), .def = 1, .lo = 0, .hi = (double)INT64_MAX,
     .help = "data seed: the train and test prompts"},
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .metavar = "FILE", .def_str = "results/icl.csv",
     .help = "results CSV the rows are appended to"},
    {.name = "kernels", .cli = "kernel", .type = OPT_STRING, .offset = AT(kernels), .size = 256,
     .metavar = "K[,K...]",
     .help = "train a model with kernel K in every layer and measure it beside the baselines; default: none "
             "(the baselines only)"},
    {.name = "layers", .type = OPT_INT, .offset = AT(train.layers), .def = 2, .lo = 1, .hi = 16, .help = "model layers"},
    {.name = "d_model", .cli = "d-model", .type = OPT_INT, .offset = AT(train.d_model), .def = 64, .lo = 1,
     .hi = 1 << 14, .help = "model width"},
    {.name = "heads", .type = OPT_INT, .offset = AT(train.heads), .def = 2, .lo = 1, .hi = 256, .help = "attention heads"},
    {.name = "mlp", .type = OPT_INT, .offset = AT(train.mlp), .def = 128, .lo = 0, .hi = 1 << 16,
     .help = "MLP width (0: none)"},
    {.name = "steps", .type = OPT_INT, .offset = AT(train.steps), .def = 2000, .lo = 1, .hi = 1 << 24,
     .help = "AdamW steps (cosine, 10 % warm-up, clip 1, weight decay 0.01)"},
    {.name = "batch", .type = OPT_INT, .offset = AT(train.batch), .def = 64, .lo = 1, .hi = 1 << 16,
     .help = "prompts per step"},
    {.name = "train_n", .cli = "train-n", .type = OPT_INT, .offset = AT(train.train_n), .def = 16384, .lo = 1,
     .hi = 1 << 24, .help = "training prompts (the train split)"},
    {.name = "lr", .type = OPT_DOUBLE, .offset = AT(train.lr), .def = 1e-3, .lo = 1e-8, .hi = 1, .help = "peak learning rate"},
    {.name = "model_seed", .cli = "model-seed", .type = OPT_UINT, .offset = AT(train.seed), .def = 1, .lo = 0,
     .hi = (double)INT64_MAX, .help = "weights and batch order"},
    {.name = "threads", .type = OPT_INT32, .offset = AT(train.threads), .def = 2, .lo = 1, .hi = 4096,
     .help = "OpenMP threads of the training"},
    {0},
};
#undef AT

static const char usage_head[] =
    "usage: attnbench icl [--config FILE] [--task-param d=8 ...] [--prompts N] [--seed S] [--out FILE]\n"
    "                     [--kernel K[,K...] [model and training options]]\n"
    "In-context linear regression (docs/icl.md). On the held-out prompts, in double: zero,\n"
    "least squares (minimum norm below d examples), ridge (lambda = sigma^2, the posterior mean;\n"
    "= least squares when sigma = 0), averaging w = (1/k) sum y_j x_j and 3-nearest-neighbours;\n"
    "then per --kernel a causal model (linear read-in, that kernel in every layer, linear\n"
    "read-out at the x positions, squared-error loss) trained on the train prompts. One row\n"
    "per (predictor, k), metric sq_err = E[(y_hat - y)^2] / d with its 95 % interval; a table\n"
    "on stdout. Rows the file holds already (same settings) are not written again.\n";

/* A JSON object from path whose keys are rows of icl_table, into o. */
static int read_config(const char *path, icl_opts *o)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return attn_fail(ATTN_EIO, "%s: cannot open", path);
    char text[1 << 14];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    cJSON *root = len < sizeof text - 1 ? cJSON_Parse(text) : NULL;
    static const char *const extra[] = {"description", NULL};
    const opt_def *const tables[] = {icl_table, NULL};
    int rc = !cJSON_IsObject(root) ? attn_fail(ATTN_EINVAL, "%s: expected one JSON object under 16 KiB", path)
                                    : opt_check_keys(tables, extra, root, path);
    if (!rc)
        rc = opt_read_config(icl_table, o, root, path);
    cJSON_Delete(root);
    return rc;
}

static void print_table(const icl_linreg_cfg *c, const icl_rows_id *ids, const icl_curve *curves, int n)
{
    printf("%4s", "k");
    for (int i = 0; i < n; i++)
        printf(" %15.15s", strncmp(ids[i].kernel, "baseline_", 9) ? ids[i].kernel : ids[i].kernel + 9);
    printf("\n");
    for (int64_t k = 0; k < c->points; k++) {
        printf("%4lld", (long long)k);
        for (int i = 0; i < n; i++) {
            double m, lo, hi;
            icl_curve_stat(&curves[i], k, c->d, &m, &lo, &hi);
            printf(" %8.4f+-%5.3f", m, hi - m);
        }
        printf("\n");
    }
}

/* Options: the defaults, the config (when --config names one), the command line. */
static int parse(int argc, char **argv, icl_opts *o, int *exit_code)
{
    memset(o, 0, sizeof *o);
    opt_defaults(icl_table, o);
    const char *config = NULL;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
    if (config && read_config(config, o))
        return *exit_code = cli_report("icl"), 1;
    return cli_parse_table("icl", icl_table, o, argc, argv, usage_head, "unexpected argument (all options have names)",
                           exit_code);
}

/* The kernels' curves after the baselines' in curves/ids (n so far); names their rows. */
static int train_all(const icl_opts *o, const icl_linreg_cfg *c, const task_data *test, icl_curve *curves,
                     icl_rows_id *ids, char (*kname)[32], char (*desc)[160], char (*settings)[160], int *n)
{
    char names[ICL_MAX_KERNELS][CLI_ITEM];
    int nk = 0, rc = o->kernels[0] ? cli_split("--kernel", o->kernels, names, ICL_MAX_KERNELS, &nk) : 0;
    for (int i = 0; !rc && i < nk; i++) {
        icl_train_opts t = o->train;
        t.progress = 1;
        if (strlen(names[i]) >= sizeof t.kernel)
            return attn_fail(ATTN_EINVAL, "--kernel: expected names below %zu characters, found '%s'", sizeof t.kernel,
                             names[i]);
        memcpy(t.kernel, names[i], strlen(names[i]) + 1);
        fprintf(stderr, "icl: training %s (%lld steps of %lld prompts)\n", t.kernel, (long long)t.steps,
                (long long)t.batch);
        if ((rc = icl_train_curve(&t, c, &o->task_params, o->seed, test, &curves[*n], desc[*n], sizeof desc[*n])) != 0)
            break;
        snprintf(settings[*n], sizeof settings[*n], "steps=%lld;lr=%g;batch=%lld;n=%lld;model_seed=%llu",
                 (long long)t.steps, t.lr, (long long)t.batch, (long long)t.train_n, (unsigned long long)t.seed);
        memcpy(kname[*n], t.kernel, sizeof kname[*n]);
        ids[*n] = (icl_rows_id){.kernel = kname[*n], .model = desc[*n], .pass = "train", .dtype = "fp32",
                                .settings = settings[*n], .task = c, .prompts = test->n, .seed = o->seed,
                                .threads = t.threads};
        (*n)++;
    }
    return rc;
}

int cmd_icl(int argc, char **argv)
{
    icl_opts o;
    int rc;
    if (parse(argc, argv, &o, &rc))
        return rc;
    icl_linreg_cfg c;
    task_data t;
    if (icl_linreg_cfg_read(&o.task_params, &c) || task_icl_linreg.make(&o.task_params, TASK_TEST, o.seed, o.prompts, NULL, &t))
        return cli_report("icl");
    enum { MAX = ICL_BASELINES + ICL_MAX_KERNELS };
    icl_curve curves[MAX];
    icl_rows_id ids[MAX];
    char kname[MAX][32], desc[MAX][160], settings[MAX][160];
    double lambda = c.sigma * c.sigma;
    int n = ICL_BASELINES;
    memset(curves, 0, sizeof curves);
    rc = icl_baseline_curves(&t, lambda, curves);
    snprintf(settings[0], sizeof settings[0], "lambda=%g", lambda);
    for (int b = 0; b < ICL_BASELINES; b++)
        ids[b] = (icl_rows_id){.kernel = icl_baseline_names[b], .model = "", .pass = "eval", .dtype = "fp64",
                               .settings = settings[0], .task = &c, .prompts = o.prompts, .seed = o.seed, .threads = 1};
    if (!rc)
        rc = train_all(&o, &c, &t, curves, ids, kname, desc, settings, &n);
    const char *out = o.out ? o.out : "results/icl.csv";
    int written = 0;
    if (!rc)
        rc = icl_rows_write(out, ids, curves, n, &written);
    if (!rc) {
        print_table(&c, ids, curves, n);
        fprintf(stderr, "icl: %d rows appended to %s\n", written, out);
    }
    for (int i = 0; i < MAX; i++) /* a training that failed leaves its curve initialised past n */
        icl_curve_free(&curves[i]);
    task_data_free(&t);
    return rc ? cli_report("icl") : 0;
}
