/* attnbench train / eval: a model with any registry kernel, trained from
 * scratch on a task, rows per evaluation; a checkpoint reloaded later. */
#include "cli.h"
#include "harness/train/extrapolate.h"
#include "kernels/core/registry.h"
#include "harness/train/train_run.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* The prose around the option lines, which come from the option tables. */
static const char train_usage_head[] =
    "usage: attnbench train --task T --kernel K[,K...] [options]\n"
    "Trains a model from scratch on task T (see 'attnbench list tasks') with attention\n"
    "kernel K in every layer (one name per layer: a hybrid), then evaluates on the test\n"
    "split. Rows (suite = the task's suite, metric accuracy with a 95% interval) go to\n"
    "results/<suite>.csv, one per evaluation (params step=..;split=valid) and a final one\n"
    "(split=test;best_step=K;weights=last, or =best with --patience). Progress with an ETA\n"
    "goes to stderr.\n";

static const char train_usage_tail[] =
    "Resume: every evaluation saves the whole training state to .train-<job_id>.ckpt next\n"
    "to the results file; rerunning an interrupted run (same settings, no test row yet)\n"
    "continues from it without writing its rows twice. The file is removed at the end.\n";

static void train_usage(void)
{
    static const struct {
        const char *group, *heading;
    } sections[] = {{"task and data", "task and data:"},
                    {"model", "model:"},
                    {"optimiser", "optimiser (AdamW, decoupled weight decay):"},
                    {"run", "run:"}};
    fputs(train_usage_head, stdout);
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        puts(sections[i].heading);
        opt_print_help(stdout, train_run_opts_table, sections[i].group);
        opt_print_help(stdout, nn_model_opts, sections[i].group);
    }
    fputs(train_usage_tail, stdout);
}

static const char eval_usage[] =
    "usage: attnbench eval --checkpoint FILE [--test-n N] [--threads T] [--out FILE]\n"
    "       attnbench eval --checkpoint FILE --scale S1,S2,... [--depths K] [--test-n N] ...\n"
    "Rebuilds the model and the test split a checkpoint of 'attnbench train' names,\n"
    "evaluates it and writes a row (split=test-reload). Exit 0 when the accuracy equals the\n"
    "one logged at training time (same test split), 1 when it differs.\n"
    "With --scale (length extrapolation): for each multiple S of the trained length (integers\n"
    ">= 1, e.g. 1,2,4,8) the test split is regenerated at S x that length (task param len for\n"
    "the NIAH tasks, L for MQAR and the recall tasks; D, V and the rest stay as trained) and\n"
    "evaluated: one row per length (params ...;split=extrap;eval_len=E;depth=d;train_len=T).\n"
    "Learned positions cover the trained length only: train with --pos sinusoid|rope|none.\n"
    "  --depths K          with --scale, tasks with a depth param (NIAH): K >= 2 needle depths\n"
    "                      evenly spaced in [0, 1], one row per (length, depth) cell\n"
    "  --kernel K [--param k=v ...] [--mask SPEC]\n"
    "                      with --scale: evaluate the trained weights with kernel K in every\n"
    "                      layer (e.g. StreamingLLM on a flash-trained model: --kernel streaming\n"
    "                      --param mode=decode --mask sink:n=4,w=64); rows name K (kernel\n"
    "                      column), the mask spec (mask column), and params end in\n"
    "                      ;kernel_params=..;mask=..\n";

/* What the tables cannot say: choices that depend on each other. */
static int train_check(nn_model_cfg *m)
{
    if (m->variant == NN_VARIANT_LOOPED && m->loops < 2)
        m->loops = 2;
    if (m->variant == NN_VARIANT_HYBRID && m->n_kernels == 1)
        return cli_usage_error("train", "--model hybrid: give one kernel per layer (--kernel a,b,...)");
    if (m->n_kernels > 1 && m->n_kernels != m->layers)
        return cli_usage_error("train", "--kernel: one kernel, or one per layer (--layers)");
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_run_opts r;
    train_run_defaults(&r);
    const opt_bind binds[] = {{train_run_opts_table, &r}, {nn_model_opts, &r.model}, {0}};
    int help, rc = opt_parse_cli(binds, argc, argv, &help);
    if (help)
        return train_usage(), 0;
    if (rc)
        return cli_usage_error("train", attn_last_error());
    if (optind < argc)
        return cli_usage_error("train", "--task and --kernel are required, nothing else is positional");
    if ((rc = train_check(&r.model)) != 0)
        return rc;
    double acc;
    if (train_run_exec(&r, &acc))
        return cli_report("train");
    return 0;
}

/* --scale S1,S2,...: positive integer multiples of the trained length. */
static int parse_scales(const char *s, extrapolate_opts *x)
{
    char items[ATTN_EXTRAP_MAX_SCALES][CLI_ITEM];
    int rc = cli_split("--scale", s, items, ATTN_EXTRAP_MAX_SCALES, &x->n_scales);
    for (int i = 0; !rc && i < x->n_scales; i++)
        rc = cli_int64("--scale", items[i], 1, 1 << 16, &x->scale[i]);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"checkpoint", 1, 0, 'c'}, {"test-n", 1, 0, 'n'}, {"threads", 1, 0, 't'},
                                         {"out", 1, 0, 'o'},        {"scale", 1, 0, 'S'},  {"depths", 1, 0, 'K'},
                                         {"kernel", 1, 0, 'k'},     {"param", 1, 0, 'p'},  {"mask", 1, 0, 'm'},
                                         {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    const char *path = NULL, *out = NULL;
    int64_t n = 0, th = 1, depths = 0;
    extrapolate_opts x = {.n_scales = 0};
    int c, rc = 0;
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'n': rc = cli_int64("--test-n", optarg, 1, 1 << 30, &n); break;
        case 't': rc = cli_int64("--threads", optarg, 1, 1024, &th); break;
        case 'o': out = optarg; break;
        case 'S': rc = parse_scales(optarg, &x); break;
        case 'K': rc = cli_int64("--depths", optarg, 2, 1001, &depths); break;
        case 'k':
            x.kernel = optarg;
            rc = attn_find_kernel(optarg) ? 0 : attn_fail(ATTN_EINVAL, "--kernel: unknown kernel '%s' (see 'attnbench list kernels')", optarg);
            break;
        case 'p': rc = param_bag_add(&x.kparams, optarg); break;
        case 'm': x.mask = optarg; break;
        case 'h': fputs(eval_usage, stdout); return 0;
        default: return cli_usage_error("eval", "unknown option or missing value (see 'attnbench eval --help')");
        }
    }
    if (rc)
        return cli_report("eval");
    if (!path || optind < argc)
        return cli_usage_error("eval", "--checkpoint FILE is required, nothing else is positional");
    if ((x.kernel || x.mask || x.kparams.n) && !x.n_scales)
        return cli_usage_error("eval", "--kernel, --param and --mask need --scale (e.g. --scale 1,2,4)");
    if (x.mask && !x.kernel)
        return cli_usage_error("eval", "--mask needs --kernel (the kernel swapped in)");
    if (depths && !x.n_scales)
        return cli_usage_error("eval", "--depths needs --scale (e.g. --scale 1,2,4,8 --depths 5)");
    if (x.n_scales) {
        int rows;
        x.checkpoint = path, x.out = out, x.test_n = n, x.threads = (int)th, x.depths = (int)depths, x.progress = 1;
        if (extrapolate_run(&x, &rows))
            return cli_report("eval");
        printf("%d rows written (%d lengths x %d depths)\n", rows, x.n_scales, depths ? (int)depths : 1);
        return 0;
    }
    double acc, logged;
    if (train_run_eval_checkpoint(path, n, (int)th, out, &acc, &logged))
        return cli_report("eval");
    printf("test accuracy %.6f (logged at training: %.6f)%s\n", acc, logged,
           n ? "" : acc == logged ? ": reproduced exactly" : ": DIFFERS");
    return n || acc == logged ? 0 : 1;
}
