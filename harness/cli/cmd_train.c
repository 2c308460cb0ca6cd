/* attnbench train / eval: a model with any registry kernel, trained from
 * scratch on a task, rows per evaluation; a checkpoint reloaded later. */
#include "cli.h"
#include "harness/train/extrapolate.h"
#include "kernels/core/registry.h"
#include "harness/train/train_run.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char train_usage[] =
    "usage: attnbench train --task T --kernel K[,K...] [options]\n"
    "Trains a model from scratch on task T (see 'attnbench list tasks') with attention\n"
    "kernel K in every layer (one name per layer: a hybrid), then evaluates on the test\n"
    "split. Rows (suite = the task's suite, metric accuracy with a 95% interval) go to\n"
    "results/<suite>.csv, one per evaluation (params step=..;split=valid) and a final one\n"
    "(split=test;best_step=K;weights=last, or =best with --patience). Progress with an ETA\n"
    "goes to stderr.\n"
    "task and data:\n"
    "  --task-param k=v    task parameter (repeatable; e.g. L=256, D=16 for mqar)\n"
    "  --data DIR          official files (LRA formats); default: generators / stand-ins\n"
    "  --train-n N --valid-n N --test-n N   examples per split (2000, 256, 512)\n"
    "  --data-seed S       data seed (1)\n"
    "model:\n"
    "  --model M           encoder | twotower | lm (must match the task) | hybrid | looped;\n"
    "                      default: the task's (classify -> encoder, pair -> twotower, LM -> lm)\n"
    "  --param k=v         kernel parameter for every layer (repeatable)\n"
    "  --layers L (2) --d-model C (64) --heads H (2) --heads-kv H --mlp F (128; 0: no MLP)\n"
    "  --pos learned|sinusoid|rope|none (learned)  --pool cls|mean (cls)  --rms\n"
    "  --dropout p (0)  --loops n (1; looped: the stack n times, shared weights)\n"
    "  --short-conv K (0)  causal depthwise conv of width K + SiLU on q, k, v (DeltaNet: 4)\n"
    "optimiser (AdamW, decoupled weight decay):\n"
    "  --steps S (200) --batch B (16) --accum k (1) --lr x (1e-3) --wd x (0.1) --warmup n (10)\n"
    "  --sched cosine|linear|constant|rsqrt (cosine) --min-lr r (0.1 of lr) --clip x (1; 0 off)\n"
    "                      rsqrt: LRA's constant*linear_warmup*rsqrt_decay with --lr as its peak:\n"
    "                      lr * min(1, t/warmup) * sqrt(warmup / max(t, warmup)); no end, no --min-lr\n"
    "  --eval-every k (50) --patience k (0: no early stop; else the test row evaluates\n"
    "                      the best-validation weights, params best_step=K;weights=best)\n"
    "run:\n"
    "  --seed S (1; weights, batches, dropout)  --threads T (1)  --out FILE  --checkpoint FILE\n"
    "                      (--checkpoint: the weights the test row evaluated, for 'attnbench eval')\n"
    "  --quiet             no progress lines\n"
    "Resume: every evaluation saves the whole training state to .train-<job_id>.ckpt next\n"
    "to the results file; rerunning an interrupted run (same settings, no test row yet)\n"
    "continues from it without writing its rows twice. The file is removed at the end.\n";

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

static int parse_sched(const char *s, optim_sched_kind *k)
{
    static const char *const names[] = {"constant", "cosine", "linear", "rsqrt"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return *k = (optim_sched_kind)i, 0;
    return attn_fail(ATTN_EINVAL, "--sched: expected cosine, linear, constant or rsqrt, found '%s'", s);
}

static int copy_str(const char *opt, const char *v, char *out, size_t n, const char *const *allowed)
{
    for (const char *const *a = allowed; a && *a; a++)
        if (!strcmp(*a, v))
            return snprintf(out, n, "%s", v), 0;
    if (!allowed && strlen(v) < n)
        return snprintf(out, n, "%s", v), 0;
    return attn_fail(ATTN_EINVAL, "%s: unexpected value '%s'", opt, v);
}

int cmd_train(int argc, char **argv)
{
    enum { O_TP = 256, O_DATA, O_TRN, O_VAN, O_TEN, O_DSEED, O_MODEL, O_LAYERS, O_DM, O_HKV, O_MLP, O_POS,
           O_POOL, O_RMS, O_DROP, O_LOOPS, O_STEPS, O_ACC, O_LR, O_WD, O_WARM, O_SCHED, O_MINLR, O_CLIP, O_EVERY,
           O_PAT, O_CKPT, O_QUIET, O_SCONV };
    static const struct option opts[] = {
        {"task", 1, 0, 'T'}, {"kernel", 1, 0, 'k'}, {"param", 1, 0, 'P'}, {"task-param", 1, 0, O_TP},
        {"data", 1, 0, O_DATA}, {"train-n", 1, 0, O_TRN}, {"valid-n", 1, 0, O_VAN}, {"test-n", 1, 0, O_TEN},
        {"data-seed", 1, 0, O_DSEED}, {"model", 1, 0, O_MODEL}, {"layers", 1, 0, O_LAYERS},
        {"d-model", 1, 0, O_DM}, {"heads", 1, 0, 'H'}, {"heads-kv", 1, 0, O_HKV}, {"mlp", 1, 0, O_MLP},
        {"pos", 1, 0, O_POS}, {"pool", 1, 0, O_POOL}, {"rms", 0, 0, O_RMS}, {"dropout", 1, 0, O_DROP},
        {"loops", 1, 0, O_LOOPS}, {"steps", 1, 0, O_STEPS}, {"batch", 1, 0, 'B'}, {"accum", 1, 0, O_ACC},
        {"lr", 1, 0, O_LR}, {"wd", 1, 0, O_WD}, {"warmup", 1, 0, O_WARM}, {"sched", 1, 0, O_SCHED},
        {"min-lr", 1, 0, O_MINLR}, {"clip", 1, 0, O_CLIP}, {"eval-every", 1, 0, O_EVERY},
        {"patience", 1, 0, O_PAT}, {"seed", 1, 0, 's'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'o'},
        {"checkpoint", 1, 0, O_CKPT}, {"quiet", 0, 0, O_QUIET}, {"short-conv", 1, 0, O_SCONV},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    static const char *const models[] = {"encoder", "twotower", "lm", "hybrid", "looped", NULL};
    static const char *const poss[] = {"learned", "sinusoid", "rope", "none", NULL};
    static const char *const pools[] = {"cls", "mean", NULL};
    train_run_opts r;
    train_run_defaults(&r);
    nn_model_cfg *m = &r.model;
    nn_train_cfg *t = &r.train;
    int64_t v;
    double x;
    int c, rc = 0, have_kernel = 0;
    char kernels[NN_MAX_LAYERS][CLI_ITEM];
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'T': rc = copy_str("--task", optarg, r.task, sizeof r.task, NULL); break;
        case 'k':
            if (!(rc = cli_split("--kernel", optarg, kernels, NN_MAX_LAYERS, &m->n_kernels)))
                for (int i = 0; i < m->n_kernels && !rc; i++)
                    rc = copy_str("--kernel", kernels[i], m->kernels[i], sizeof m->kernels[i], NULL);
            have_kernel = 1;
            break;
        case 'P': rc = param_bag_add(&m->kparams, optarg); break;
        case O_TP: rc = param_bag_add(&r.task_params, optarg); break;
        case O_DATA: r.data_dir = optarg; break;
        case O_TRN: rc = cli_int64("--train-n", optarg, 1, 1 << 30, &r.train_n); break;
        case O_VAN: rc = cli_int64("--valid-n", optarg, 1, 1 << 30, &r.valid_n); break;
        case O_TEN: rc = cli_int64("--test-n", optarg, 1, 1 << 30, &r.test_n); break;
        case O_DSEED: rc = cli_int64("--data-seed", optarg, 0, INT64_MAX, &v), r.data_seed = (uint64_t)v; break;
        case O_MODEL: rc = copy_str("--model", optarg, m->variant, sizeof m->variant, models); break;
        case O_LAYERS: rc = cli_int64("--layers", optarg, 1, NN_MAX_LAYERS, &m->layers); break;
        case O_DM: rc = cli_int64("--d-model", optarg, 1, 1 << 16, &m->d_model); break;
        case 'H': rc = cli_int64("--heads", optarg, 1, 1024, &m->heads); break;
        case O_HKV: rc = cli_int64("--heads-kv", optarg, 1, 1024, &m->heads_kv); break;
        case O_MLP: rc = cli_int64("--mlp", optarg, 0, 1 << 20, &m->mlp); break;
        case O_POS: rc = copy_str("--pos", optarg, m->pos, sizeof m->pos, poss); break;
        case O_POOL: rc = copy_str("--pool", optarg, m->pool, sizeof m->pool, pools); break;
        case O_RMS: m->rms = 1; break;
        case O_DROP: rc = cli_double("--dropout", optarg, 0, 0.95, &x), m->dropout = (float)x; break;
        case O_LOOPS: rc = cli_int64("--loops", optarg, 1, 64, &v), m->loops = (int)v; break;
        case O_STEPS: rc = cli_int64("--steps", optarg, 1, 1 << 30, &t->steps); break;
        case 'B': rc = cli_int64("--batch", optarg, 1, 1 << 20, &t->batch); break;
        case O_ACC: rc = cli_int64("--accum", optarg, 1, 1 << 20, &t->accum); break;
        case O_LR: rc = cli_double("--lr", optarg, 0, 10, &t->lr); break;
        case O_WD: rc = cli_double("--wd", optarg, 0, 10, &t->weight_decay); break;
        case O_WARM: rc = cli_int64("--warmup", optarg, 0, 1 << 30, &t->warmup); break;
        case O_SCHED: rc = parse_sched(optarg, &t->sched); break;
        case O_MINLR: rc = cli_double("--min-lr", optarg, 0, 1, &t->min_lr_ratio); break;
        case O_CLIP: rc = cli_double("--clip", optarg, 0, 1e6, &t->clip); break;
        case O_EVERY: rc = cli_int64("--eval-every", optarg, 1, 1 << 30, &t->eval_every); break;
        case O_PAT: rc = cli_int64("--patience", optarg, 0, 1 << 20, &t->patience); break;
        case 's': rc = cli_int64("--seed", optarg, 0, INT64_MAX, &v), t->seed = (uint64_t)v; break;
        case 't': rc = cli_int64("--threads", optarg, 1, 1024, &v), t->threads = (int)v; break;
        case 'o': r.out = optarg; break;
        case O_CKPT: r.checkpoint = optarg; break;
        case O_QUIET: t->progress = 0; break;
        case O_SCONV: rc = cli_int64("--short-conv", optarg, 0, NN_SHORT_CONV_MAX, &v), m->short_conv = (int)v; break;
        case 'h': fputs(train_usage, stdout); return 0;
        default: return cli_usage_error("train", "unknown option or missing value (see 'attnbench train --help')");
        }
    }
    if (rc)
        return cli_report("train");
    if (optind < argc || !r.task[0] || !have_kernel)
        return cli_usage_error("train", "--task and --kernel are required, nothing else is positional");
    if (!strcmp(m->variant, "looped") && m->loops < 2)
        m->loops = 2;
    if (!strcmp(m->variant, "hybrid") && m->n_kernels == 1)
        return cli_usage_error("train", "--model hybrid: give one kernel per layer (--kernel a,b,...)");
    if (m->n_kernels > 1 && m->n_kernels != m->layers)
        return cli_usage_error("train", "--kernel: one kernel, or one per layer (--layers)");
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
