/* attnbench train / eval: a model with any registry kernel, trained from
 * scratch on a task, rows per evaluation; a checkpoint reloaded later. */
#include "cli.h"
#include "harness/train/extrapolate.h"
#include "kernels/core/registry.h"
#include "harness/train/train_run.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The prose around the option lines, which come from the option tables. */
static const char train_usage_head[] =
    "usage: attnbench train --task T --kernel K[,K...] [options]\n"
    "Trains a model from scratch on task T (see 'attnbench list tasks') with attention\n"
    "kernel K in every layer (one name per layer: a hybrid), then evaluates on the test\n"
    "split. Rows (suite = the task's suite, metric accuracy with a 95% interval) go to\n"
    "results/<suite>.csv, one per evaluation (params step=..;split=valid) and a final one\n"
    "(split=test;best_step=K;weights=last, or =best with --patience). NIAH and passkey score\n"
    "greedily generated answers (metric first_integer_match or string_match_all, which selects\n"
    "the best step) and add a token_accuracy row per evaluation. Progress with an ETA\n"
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

static const char eval_usage_head[] =
    "usage: attnbench eval --checkpoint FILE [--test-n N] [--threads T] [--out FILE]\n"
    "       attnbench eval --checkpoint FILE --scale S1,S2,... [--depths K] [--test-n N] ...\n"
    "Rebuilds the model and the test split a checkpoint of 'attnbench train' names,\n"
    "evaluates it and writes a row (split=test-reload). Exit 0 when the value equals the\n"
    "one logged at training time (same test split), 1 when it differs.\n"
    "With --scale (length extrapolation): for each multiple S of the trained length (integers\n"
    ">= 1, e.g. 1,2,4,8) the test split is regenerated at S x that length (task param len for\n"
    "the NIAH tasks, L for MQAR and the recall tasks; D, V and the rest stay as trained) and\n"
    "evaluated: one row per length (params ...;split=extrap;eval_len=E;depth=d;train_len=T).\n"
    "Learned positions cover the trained length only: train with --pos sinusoid|rope|none.\n"
    "options:\n";

/* --scale S1,S2,...: positive integer multiples of the trained length. */
static int scales_set(void *target, const char *text, const char *where)
{
    extrapolate_opts *x = target;
    char items[ATTN_EXTRAP_MAX_SCALES][CLI_ITEM];
    int rc = cli_split(where, text, items, ATTN_EXTRAP_MAX_SCALES, &x->n_scales);
    for (int i = 0; !rc && i < x->n_scales; i++)
        rc = cli_int64(where, items[i], 1, 1 << 16, &x->scale[i]);
    return rc;
}

#define EV(f) offsetof(extrapolate_opts, f)
static const opt_def eval_opts[] = {
    {.name = "checkpoint", .type = OPT_ARG, .offset = EV(checkpoint), .metavar = "FILE",
     .help = "a checkpoint of 'attnbench train --checkpoint' (required)"},
    {.name = "test_n", .type = OPT_INT, .offset = EV(test_n), .lo = 1, .hi = 1 << 30, .def_str = "the checkpoint's",
     .help = "test examples"},
    {.name = "threads", .type = OPT_INT32, .offset = EV(threads), .def = 1, .lo = 1, .hi = 1024, .metavar = "T",
     .help = "threads"},
    {.name = "out", .type = OPT_ARG, .offset = EV(out), .metavar = "FILE", .def_str = "results/<suite>.csv",
     .help = "results CSV"},
    {.name = "scale", .type = OPT_CUSTOM, .metavar = "S1,S2,...", .set_text = scales_set,
     .help = "evaluate at these multiples of the trained length"},
    {.name = "depths", .type = OPT_INT32, .offset = EV(depths), .lo = 2, .hi = 1001, .metavar = "K", .def_str = "the trained depth",
     .help = "with --scale, tasks with a depth param (the NIAH retrieval tasks; not cwe, fwe): K >= 2 needle "
             "depths evenly spaced in [0, 1], one row per (length, depth) cell"},
    {.name = "kernel", .type = OPT_ARG, .offset = EV(kernel), .metavar = "K",
     .help = "with --scale: evaluate the trained weights with kernel K in every layer (e.g. StreamingLLM on a "
             "flash-trained model: --kernel streaming --param mode=decode --mask sink:n=4,w=64); rows name K "
             "(kernel column), the mask spec (mask column), and params end in ;kernel_params=..;mask=.."},
    {.name = "param", .type = OPT_PARAMS, .offset = EV(kparams), .help = "parameter of that kernel (repeatable)"},
    {.name = "mask", .type = OPT_ARG, .offset = EV(mask), .metavar = "SPEC",
     .help = "mask spec of that kernel, replacing causal/full"},
    {.name = "kv_dtype", .cli = "kv-dtype", .type = OPT_ENUM, .offset = EV(kv_dtype), .names = attn_kv_dtype_names,
     .def = ATTN_KV_FP32,
     .help = "with --kernel (one that reads it: decode, lean): every layer stores its keys and values in this "
             "format and the kernel reads that cache (docs/kv-formats.md); params end in ;kv_dtype=.."},
    {.name = "dtype", .type = OPT_ENUM, .offset = EV(dtype), .names = attn_dtype_names, .def = ATTN_DT_FP32,
     .help = "with --scale: every layer's kernel (the trained one, or --kernel) reads its queries, keys and "
             "values rounded to this type and writes its output in it (docs/dtypes.md); params end in ;dtype=.."},
    {.name = "mem_budget", .cli = "mem-budget", .type = OPT_INT, .offset = EV(mem_budget), .lo = 0, .hi = 1e18,
     .metavar = "BYTES", .def_str = "none",
     .help = "with --scale: every layer's kernel (the trained one, or --kernel) in the memory-budget mode, its "
             "tile, chunk or split sizes chosen so its planned workspace stays within BYTES; refused (exit 2) "
             "with the least budget it can meet, or when the kernel does not claim the mode "
             "(docs/memory-budget.md); params end in ;mem_budget=.."},
    {.name = "dump_kv", .cli = "dump-kv", .type = OPT_ARG, .offset = EV(dump_kv), .metavar = "FILE",
     .help = "with --scale: instead of evaluating, write the queries, keys and values every layer feeds its kernel "
             "on the first test example at the first scale (and first depth) to FILE, for bench --inputs "
             "cache:FILE[@LAYER] (docs/fidelity.md, \"Real cache contents\")"},
    {0},
};

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
    train_result res;
    rc = train_run_exec(&r, &res);
    train_result_free(&res);
    return rc ? cli_report("train") : 0;
}

/* What eval's table cannot say: options that need one another. */
static int eval_check(const extrapolate_opts *x)
{
    if (x->kernel && !attn_find_kernel(x->kernel)) {
        attn_fail(ATTN_EINVAL, "--kernel: unknown kernel '%s' (see 'attnbench list kernels')", x->kernel);
        return cli_report("eval");
    }
    if (!x->checkpoint)
        return cli_usage_error("eval", "--checkpoint FILE is required, nothing else is positional");
    if ((x->kernel || x->mask || x->kparams.n) && !x->n_scales)
        return cli_usage_error("eval", "--kernel, --param and --mask need --scale (e.g. --scale 1,2,4)");
    if (x->mask && !x->kernel)
        return cli_usage_error("eval", "--mask needs --kernel (the kernel swapped in)");
    if (x->dtype != ATTN_DT_FP32 && !x->n_scales)
        return cli_usage_error("eval", "--dtype needs --scale (e.g. --scale 1)");
    if (x->mem_budget && !x->n_scales)
        return cli_usage_error("eval", "--mem-budget needs --scale (e.g. --scale 1)");
    if (x->kv_dtype != ATTN_KV_FP32 && !x->kernel)
        return cli_usage_error("eval", "--kv-dtype needs --kernel (a decode kernel swapped in that reads the cache)");
    if (x->depths && !x->n_scales)
        return cli_usage_error("eval", "--depths needs --scale (e.g. --scale 1,2,4,8 --depths 5)");
    if (x->dump_kv && !x->n_scales)
        return cli_usage_error("eval", "--dump-kv needs --scale (the length: e.g. --scale 8)");
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    extrapolate_opts x;
    memset(&x, 0, sizeof x);
    opt_defaults(eval_opts, &x);
    int rc;
    if (cli_parse_table("eval", eval_opts, &x, argc, argv, eval_usage_head,
                        "--checkpoint FILE is required, nothing else is positional", &rc))
        return rc;
    if ((rc = eval_check(&x)) != 0)
        return rc;
    if (x.n_scales) {
        int rows;
        x.progress = 1;
        if (extrapolate_run(&x, &rows))
            return cli_report("eval");
        if (x.dump_kv)
            return printf("%s\n", x.dump_kv), 0;
        printf("%d rows written (%d lengths x %d depths)\n", rows, x.n_scales, x.depths ? x.depths : 1);
        return 0;
    }
    train_eval_result e;
    double logged;
    if (train_run_eval_checkpoint(x.checkpoint, x.test_n, x.threads, x.out, &e, &logged))
        return cli_report("eval");
    printf("test %s %.6f (logged at training: %.6f)%s\n", e.metric, e.value, logged,
           x.test_n ? "" : e.value == logged ? ": reproduced exactly" : ": DIFFERS");
    return x.test_n || e.value == logged ? 0 : 1;
}
