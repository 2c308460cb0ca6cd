/* REPORT.md (report_all.h). */
#include "report_all.h"

#include "report_meta.h"
#include "report_summary.h"
#include "common/atomic_file.h"
#include "common/attn_error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A suite's section: its CSV, the summary, the plots drawn from it and the
 * report written from it (both relative to DIR, shown when present). */
typedef struct {
    const char *title, *csv, *intro;
    summary_spec spec;
    const char *plots[4];
    const char *report; /* a suite report written by `attnbench report ...` */
    const char *keep[3]; /* the report's `## ` sections shown inline, by heading prefix (none: all) */
} section;

#define COLS(...) {__VA_ARGS__}, (int)(sizeof((schema_col[]){__VA_ARGS__}) / sizeof(schema_col))

static const section sections[] = {
    {"Kernels", "kernels.csv", "Each kernel at its largest N per mask and pass: median time, useful GFLOP/s, its "
     "share of the same-run sgemm roof and of its roofline (max of bytes over STREAM and FLOPs over the FMA roof).",
     {"kernels", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_MASK, ATTN_COL_PASS, ATTN_COL_D, ATTN_COL_THREADS),
      COLS(ATTN_COL_N, ATTN_COL_TIME_MS_MEDIAN, ATTN_COL_GFLOPS, ATTN_COL_PCT_SGEMM_PEAK, ATTN_COL_PCT_ROOFLINE,
           ATTN_COL_PAPI_STATUS), 0, NULL},
     {"time_vs_n", "gflops_vs_n", "memory_vs_n", "sim_misses"}, NULL, {0}},
    {"Threads", "threads.csv", "The same problems on 1, 2, ... threads: each kernel's rate per thread count (perfect "
     "scaling multiplies the 1-thread GFLOP/s by the threads).",
     {"threads", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_MASK, ATTN_COL_PASS, ATTN_COL_D, ATTN_COL_THREADS),
      COLS(ATTN_COL_N, ATTN_COL_TIME_MS_MEDIAN, ATTN_COL_GFLOPS, ATTN_COL_PCT_SGEMM_PEAK), 0, NULL},
     {"threads"}, NULL, {0}},
    {"Masks", "masks.csv", "Each kernel and mask at its largest N: the mask's density and the sparsity efficiency "
     "(the share of the mask's theoretical saving realised).",
     {"masks", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_MASK, ATTN_COL_PASS),
      COLS(ATTN_COL_N, ATTN_COL_DENSITY, ATTN_COL_GFLOPS, ATTN_COL_SPARSITY_EFF), 0, NULL},
     {"masks_bars", "sparsity_eff"}, NULL, {0}},
    {"Decode", "decode.csv", "Each kernel and KV cache format at its longest KV cache: memory bandwidth (of the "
     "stored bytes) and its share of the same-run STREAM triad; a low-precision cache's error against the oracle "
     "on the unrounded cache is softmax_rel_err.",
     {"decode", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_DTYPE, ATTN_COL_MASK, ATTN_COL_H, ATTN_COL_H_KV, ATTN_COL_D),
      COLS(ATTN_COL_N_KV, ATTN_COL_TIME_MS_MEDIAN, ATTN_COL_GBYTES_S, ATTN_COL_PCT_STREAM_PEAK,
           ATTN_COL_PCT_ROOFLINE, ATTN_COL_SOFTMAX_REL_ERR), 0, NULL},
     {"decode_gbs"}, NULL, {0}},
    {"Scaling", "scaling.csv", "Each kernel's time exponent in N (a fit over the suite's lengths) at its largest N.",
     {"scaling", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_MASK, ATTN_COL_PASS),
      COLS(ATTN_COL_N, ATTN_COL_TIME_MS_MEDIAN, ATTN_COL_N_EXPONENT), 0, NULL},
     {"scaling_time"}, NULL, {0}},
    {"Fidelity of approximate kernels", "fidelity.csv", NULL, {0}, {"fidelity"}, "FIDELITY.md", {"Target"}},
    {"Long-context decode", "longctx.csv", NULL, {0}, {"longctx"}, "LONGCTX.md", {"Target", "Trained"}},
    {"Associative recall", "recall.csv", NULL, {0}, {"mqar_lines", "recall_state"}, "RECALL.md", {0}},
    {"Needle in a haystack", "niah.csv", "Mean generated-answer score per kernel, task and length over the test "
     "and length/depth evaluations (validation rows left out; `first_integer_match` is Landmark's passkey rule).",
     {"niah", "first_integer_match", COLS(ATTN_COL_KERNEL, ATTN_COL_TASK, ATTN_COL_N), COLS(ATTN_COL_VALUE), 1,
      "split=valid"},
     {"niah_heatmap", "niah_length"}, NULL, {0}},
    {"Long Range Arena", "lra.csv", NULL, {0}, {"lra_bubbles"}, "LRA.md", {"Speed and memory", "Ranking"}},
};

static int exists(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

/* Whether a `## ` section of a suite report is shown inline. */
static int kept(const section *s, const char *heading)
{
    if (!s->keep[0])
        return 1;
    for (int i = 0; i < 3 && s->keep[i]; i++)
        if (!strncmp(heading, s->keep[i], strlen(s->keep[i])))
            return 1;
    return 0;
}

/* A suite report inline, its headings one level down: its title and
 * introduction, and the sections `keep` names (the per-shape tables stay in
 * the linked file). */
static void embed(const char *dir, const section *s, FILE *md)
{
    char path[1200], line[8192];
    snprintf(path, sizeof path, "%s/%s", dir, s->report);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(md, "From [%s](%s)%s:\n\n", s->report, s->report, s->keep[0] ? ", its summary (every table is there)" : "");
    int show = 1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "## ", 3))
            show = kept(s, line + 3);
        if (show)
            fprintf(md, "%s%s", line[0] == '#' ? "##" : "", line);
    }
    fclose(f);
    fputs("\n", md);
}

static int write_section(const char *dir, const section *s, FILE *md)
{
    char csv[1200];
    snprintf(csv, sizeof csv, "%s/%s", dir, s->csv);
    int have_csv = exists(dir, s->csv), have_report = s->report && exists(dir, s->report);
    fprintf(md, "\n## %s\n\n", s->title);
    if (!have_csv && !have_report) {
        fprintf(md, "No `%s` in this results directory: the suite was not run.\n", s->csv);
        return 0;
    }
    if (s->spec.suite && have_csv) {
        fprintf(md, "%s Rows of [%s](%s).\n\n", s->intro, s->csv, s->csv);
        int rc = summary_table(csv, &s->spec, md);
        if (rc < 0)
            return rc;
        if (rc == 0)
            fprintf(md, "`%s` has no ok `%s` rows.\n", s->csv, s->spec.suite);
    }
    if (have_report)
        embed(dir, s, md);
    else if (s->report)
        fprintf(md, "`%s` is not written yet (`attnbench report` of this suite).\n", s->report);
    for (int p = 0; p < 4 && s->plots[p]; p++) {
        char png[128];
        snprintf(png, sizeof png, "plots/%s.png", s->plots[p]);
        if (exists(dir, png))
            fprintf(md, "\n![%s](%s)\n", s->plots[p], png);
    }
    return 0;
}

/* The same-run roofs from peak.csv: sgemm and FMA-roof GFLOP/s and STREAM GB/s per threads. */
static void roofs(const char *dir, FILE *md)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/peak.csv", dir);
    if (access(path, R_OK) != 0) {
        fputs("No `peak.csv`: the same-run roofs were not measured (`attnbench peak`).\n", md);
        return;
    }
    summary_spec s = {"peak", NULL, COLS(ATTN_COL_KERNEL, ATTN_COL_CPU, ATTN_COL_THREADS),
                      COLS(ATTN_COL_GFLOPS, ATTN_COL_GBYTES_S, ATTN_COL_UTC), 0, NULL};
    fputs("Same-run roofs (the last `attnbench peak` of each machine and thread count, [peak.csv](peak.csv)); "
          "every rate in the tables is read against these.\n\n", md);
    if (summary_table(path, &s, md) <= 0)
        fputs("`peak.csv` has no ok rows.\n", md);
}

static const char *const all_csvs[] = {"kernels.csv", "masks.csv", "decode.csv", "scaling.csv", "peak.csv",
                                       "fidelity.csv", "longctx.csv", "recall.csv", "niah.csv", "lra.csv",
                                       "lra_speed.csv"};
#define N_CSVS (int)(sizeof all_csvs / sizeof *all_csvs)

static int provenance(const char *dir, FILE *md)
{
    static meta_file files[N_CSVS];
    int n = 0;
    for (int i = 0; i < N_CSVS; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, all_csvs[i]);
        if (access(path, R_OK) != 0)
            continue;
        int rc = meta_scan(path, &files[n]);
        if (rc < 0)
            return rc;
        n++;
    }
    if (!n)
        return attn_fail(ATTN_EINVAL, "report all: %s holds no results CSV (expected one of kernels.csv, "
                         "masks.csv, ..., lra.csv): run ./run.sh or a sweep first", dir);
    meta_markdown(files, n, md);
    return 0;
}

int report_all_write(const char *dir, const char *md_path)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/REPORT.md", dir);
    atomic_file out; /* a failed run leaves the earlier report whole */
    if (atomic_file_open(&out, md_path ? md_path : path, "w"))
        return attn_fail(ATTN_EIO, "report all: %s: %s", md_path ? md_path : path, attn_last_error());
    FILE *md = out.f;
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(md, "# attnbench report\n\nWritten %s by `attnbench report all` from the results CSVs of this "
            "directory alone; rerun it after new results.\n\n## Where the numbers come from\n\n", when);
    int rc = provenance(dir, md);
    if (!rc) {
        fputs("\n## Machine roofs\n\n", md);
        roofs(dir, md);
    }
    for (size_t i = 0; !rc && i < sizeof sections / sizeof *sections; i++)
        rc = write_section(dir, &sections[i], md);
    if (rc) {
        atomic_file_abort(&out);
        return rc;
    }
    return atomic_file_commit(&out, ferror(md) ? EIO : 0);
}
