/* attnbench list [kernels|masks|tasks|models] [--csv] [--names] */
#include "cli.h"
#include "tasks/task.h"
#include "kernels/core/registry.h"
#include "models/model.h"

#include <csv.h>
#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench list [kernels|masks|tasks|models] [--csv] [--names]\n"
    "  kernels  registered attention kernels: family, capabilities, masks, parameters, reference\n"
    "  masks    mask kinds, their parameters, an example spec and its density at N=1024\n"
    "  tasks    evaluation tasks (generators and loaders of the quality suites)\n"
    "  models   model variants of 'attnbench train --model'\n"
    "  --csv    machine-readable output (one header row)\n"
    "  --names  names only, one per line (kernels: benchmarkable ones, without the oracle)\n";

static void flags_text(unsigned f, char *buf, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{ATTN_EXACT, "exact"},       {ATTN_APPROX, "approx"},     {ATTN_CAUSAL, "causal"},
                 {ATTN_TRAINABLE, "bwd"},     {ATTN_DECODE, "decode"},     {ATTN_RECURRENT, "recurrent"},
                 {ATTN_DISTRIBUTED, "mpi"},   {ATTN_GQA, "gqa"},           {ATTN_CROSS, "cross"},
                 {ATTN_VARLEN, "varlen"},     {ATTN_DETERMINISTIC, "det"}, {ATTN_STATEFUL, "stateful"},
                 {ATTN_REFERENCE, "reference"}, {ATTN_DV, "dv"}, {ATTN_ONE_QUERY, "one-query"}, {ATTN_PADDED, "padded"},
                 {ATTN_ROUTED, "routed"}, {ATTN_SHARED_QK, "shared-qk"}, {ATTN_GROUP_LOCAL, "group-local"},
                 {ATTN_RANKED, "ranked"}, {ATTN_NO_SCALE, "no-scale"}};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (f & names[i].bit) {
            strncat(buf, buf[0] ? " " : "", n - strlen(buf) - 1);
            strncat(buf, names[i].name, n - strlen(buf) - 1);
        }
}

/* Extra per-token inputs, appended to the capabilities. */
static void inputs_text(unsigned in, char *buf, size_t n)
{
    if (in & ATTN_IN_BETA)
        strncat(buf, " in:beta", n - strlen(buf) - 1);
    if (in & ATTN_IN_GATE)
        strncat(buf, " in:gate", n - strlen(buf) - 1);
    if (in & ATTN_IN_GATE_VEC)
        strncat(buf, " in:gate[D]", n - strlen(buf) - 1);
    if (in & ATTN_IN_ROUTER)
        strncat(buf, " in:router", n - strlen(buf) - 1);
    if (in & ATTN_IN_WEIGHTS)
        strncat(buf, " in:weights", n - strlen(buf) - 1);
}

/* The names of the bits set in `bits` from `first` on, after `label`:
 * " kv:bf16,fp16,..." (KV cache formats), " dtype:bf16,fp16" (operand types). */
static void bit_names_text(unsigned bits, int first, const char *const *names, const char *label, char *buf,
                           size_t n)
{
    for (int t = first, none = 1; names[t]; t++)
        if (bits & (1u << t)) {
            strncat(buf, none ? label : ",", n - strlen(buf) - 1);
            strncat(buf, names[t], n - strlen(buf) - 1);
            none = 0;
        }
}

static void masks_text(uint32_t m, char *buf, size_t n)
{
    buf[0] = '\0';
    if (m == ATTN_MASK_ALL) {
        snprintf(buf, n, "all");
        return;
    }
    for (int k = 0; k < ATTN_MASK__COUNT; k++)
        if (m & ATTN_MASK_BIT(k)) {
            strncat(buf, buf[0] ? " " : "", n - strlen(buf) - 1);
            strncat(buf, attn_mask_kind_name((attn_mask_kind)k), n - strlen(buf) - 1);
        }
}

static void csv_row(const char *const *cells, int n)
{
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', stdout);
        csv_fwrite(stdout, cells[i], strlen(cells[i]));
    }
    fputc('\n', stdout);
}

/* A kernel's flags (with its per-token inputs, KV formats and operand types), masks and params as listed. */
static void kernel_texts(const attn_kernel *k, char flags[256], char masks[512], char params[2048])
{
    flags_text(k->flags, flags, 256);
    inputs_text(k->inputs, flags, 256);
    bit_names_text(k->kv_dtypes, ATTN_KV_BF16, attn_kv_dtype_names, " kv:", flags, 256);
    bit_names_text(k->dtypes, ATTN_DT_BF16, attn_dtype_names, " dtype:", flags, 256);
    if (k->budget_params) /* the memory-budget mode: the sizes it may choose */
        snprintf(flags + strlen(flags), 256 - strlen(flags), " budget:%s", k->budget_params);
    masks_text(k->masks, masks, 512);
    opt_summary(k->params, params, 2048);
    if (k->notes)
        snprintf(params + strlen(params), 2048 - strlen(params), "%s%s", params[0] ? "; " : "", k->notes);
}

static void list_kernels(int as_csv, int names_only)
{
    static const char *const header[] = {"name", "family", "flags", "masks", "params", "reference"};
    char flags[256], masks[512], params[2048];
    int wf = (int)strlen("capabilities"), wm = (int)strlen("masks"); /* the table's columns fit the longest cell */
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        kernel_texts(*k, flags, masks, params);
        wf = (int)strlen(flags) > wf ? (int)strlen(flags) : wf;
        wm = (int)strlen(masks) > wm ? (int)strlen(masks) : wm;
    }
    if (as_csv)
        csv_row(header, 6);
    else if (!names_only)
        printf("%-14s %-9s %-*s %-*s %s\n", "name", "family", wf, "capabilities", wm, "masks", "reference / params");
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (names_only) {
            if (!((*k)->flags & ATTN_REFERENCE))
                printf("%s\n", (*k)->name);
            continue;
        }
        kernel_texts(*k, flags, masks, params);
        const char *cells[] = {(*k)->name, (*k)->family, flags, masks, params, (*k)->reference};
        if (as_csv)
            csv_row(cells, 6);
        else
            printf("%-14s %-9s %-*s %-*s %s%s%s\n", cells[0], cells[1], wf, cells[2], wm, cells[3], cells[5],
                   cells[4][0] ? "; params: " : "", cells[4]);
    }
}

/* The model variants of 'attnbench train --model' (models/model.h). */
static void list_models(int as_csv, int names_only)
{
    static const char *const header[] = {"name", "description"};
    if (as_csv)
        csv_row(header, 2);
    for (int i = NN_VARIANT_ENCODER; nn_variant_names[i]; i++) {
        const char *row[] = {nn_variant_names[i], nn_variant_help[i]};
        if (names_only)
            printf("%s\n", row[0]);
        else if (as_csv)
            csv_row(row, 2);
        else
            printf("%-9s %s\n", row[0], row[1]);
    }
}

static void list_tasks(int as_csv, int names_only)
{
    static const char *const header[] = {"name", "suite", "description", "params"};
    if (as_csv)
        csv_row(header, 4);
    else if (!names_only)
        printf("%-16s %-7s %s\n", "name", "suite", "description; params");
    for (const task_def *const *t = task_registry(); *t; t++) {
        char params[2048];
        opt_summary((*t)->params, params, sizeof params);
        const char *cells[] = {(*t)->name, (*t)->suite, (*t)->description, params};
        if (names_only)
            printf("%s\n", cells[0]);
        else if (as_csv)
            csv_row(cells, 4);
        else
            printf("%-16s %-7s %s; params: %s\n", cells[0], cells[1], cells[2], cells[3]);
    }
}

/* Density of the kind's example spec at N = 1024 self-attention, counted exactly. */
static void example_density(attn_mask_kind k, char *buf, size_t n)
{
    const int64_t N = 1024;
    attn_mask m;
    if (attn_mask_parse(attn_mask_kind_example(k), &m) || attn_mask_bind(&m, N)) {
        snprintf(buf, n, "NA:%s", attn_last_error());
        return;
    }
    int64_t H = attn_mask_varies(&m) & 1 ? 8 : 1; /* mean over 8 heads when heads differ */
    snprintf(buf, n, "%.4f", attn_mask_pairs_total(&m, 1, H, N, N, 0, 0) / ((double)H * N * N));
}

static void list_masks(int as_csv, int names_only)
{
    static const char *const header[] = {"name", "description", "example", "density_n1024"};
    if (as_csv)
        csv_row(header, 4);
    else if (!names_only)
        printf("%-16s %-34s %-9s %s\n", "name", "example", "density", "parameters (density: example at N=1024)");
    for (int k = 0; k < ATTN_MASK__COUNT; k++) {
        char dens[256];
        example_density((attn_mask_kind)k, dens, sizeof dens);
        const char *cells[] = {attn_mask_kind_name((attn_mask_kind)k), attn_mask_kind_help((attn_mask_kind)k),
                               attn_mask_kind_example((attn_mask_kind)k), dens};
        if (as_csv)
            csv_row(cells, 4);
        else if (names_only)
            printf("%s\n", cells[0]);
        else
            printf("%-16s %-34s %-9s %s\n", cells[0], cells[2], cells[3], cells[1]);
    }
}

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"csv", no_argument, 0, 'c'}, {"names", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int as_csv = 0, names_only = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) { /* options may follow the list name */
        if (c == 'c')
            as_csv = 1;
        else if (c == 'n')
            names_only = 1;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("list", argc, argv);
    }
    const char *what = optind < argc ? argv[optind] : "kernels";
    if (optind + 1 < argc)
        return cli_usage_error("list", "expected at most one of kernels|masks|tasks|models");
    if (strcmp(what, "kernels") == 0)
        list_kernels(as_csv, names_only);
    else if (strcmp(what, "masks") == 0)
        list_masks(as_csv, names_only);
    else if (strcmp(what, "tasks") == 0)
        list_tasks(as_csv, names_only);
    else if (strcmp(what, "models") == 0)
        list_models(as_csv, names_only);
    else {
        fprintf(stderr, "attnbench list: unknown list '%s': expected kernels, masks, tasks or models\n", what);
        return 2;
    }
    return 0;
}
