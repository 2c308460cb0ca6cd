#include "lra_speed.h"

#include "csvw.h"
#include "lra_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* LRA Table 2 (Tay et al. 2021), figures written down without a check
 * against the paper's text (the section says so): training steps
 * per second relative to the Transformer at 1K, 2K, 3K, 4K (NAN: not
 * reported) and peak memory at 1K and 4K in GB. */
static const struct {
    const char *row; /* the table row standing for the model (lra_published_model names it) */
    double speed[4], mem1k, mem4k;
} paper[] = {
    {"flash", {1, 1, 1, 1}, 0.85, 9.48},
    {"flash+block", {1.1, 1.7, 3.2, 5.3}, 0.42, 1.37},
    {"linformer", {1.2, 1.9, 3.7, 5.5}, 0.37, 0.99},
    {"reformer", {0.5, 0.4, 0.7, 0.8}, 0.48, 2.28},
    {"sinkhorn", {1.1, 1.6, 2.9, 3.8}, 0.47, 1.48},
    {"synthesizer", {1.1, 1.2, NAN, 1.4}, 0.65, 6.99},
    {"flash+bigbird", {0.9, 0.8, 1.2, 1.1}, 0.77, 2.88},
    {"linear", {1.1, 1.9, 3.7, 5.6}, 0.37, 1.03},
    {"performer", {1.2, 1.9, 3.8, 5.7}, 0.37, 1.06},
};
static const int64_t paper_N[4] = {1024, 2048, 3072, 4096};

static int n_index(lra_speed *s, int64_t N)
{
    for (int i = 0; i < s->n_N; i++)
        if (s->N[i] == N)
            return i;
    if (s->n_N == LRA_SPEED_NS)
        return -1;
    int at = s->n_N++;
    while (at > 0 && s->N[at - 1] > N) { /* ascending */
        s->N[at] = s->N[at - 1];
        for (int r = 0; r < s->n; r++)
            s->row[r].step_ms[at] = s->row[r].step_ms[at - 1], s->row[r].peak_rss[at] = s->row[r].peak_rss[at - 1];
        at--;
    }
    s->N[at] = N;
    for (int r = 0; r < s->n; r++)
        s->row[r].step_ms[at] = s->row[r].peak_rss[at] = 0;
    return at;
}

static lra_speed_row *row_of(lra_speed *s, const char *label)
{
    for (int r = 0; r < s->n; r++)
        if (!strcmp(s->row[r].label, label))
            return &s->row[r];
    if (s->n == LRA_SPEED_ROWS)
        return NULL;
    lra_speed_row *r = &s->row[s->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    return r;
}

static int add_row(const csvw_row *r, void *ud)
{
    lra_speed *s = ud;
    if (strcmp(r->cell[ATTN_COL_SUITE], "lra_speed") || strcmp(r->cell[ATTN_COL_STATUS], "ok"))
        return 0;
    char label[160];
    lra_row_label(r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_MASK], label, sizeof label);
    int i = n_index(s, strtoll(r->cell[ATTN_COL_N], NULL, 10));
    lra_speed_row *row = i >= 0 ? row_of(s, label) : NULL;
    if (!row)
        return 0;
    row->step_ms[i] = strtod(r->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
    row->peak_rss[i] = strtod(r->cell[ATTN_COL_PEAK_RSS_BYTES], NULL);
    snprintf(s->threads, sizeof s->threads, "%.15s", r->cell[ATTN_COL_THREADS]);
    snprintf(s->cpu, sizeof s->cpu, "%.127s", r->cell[ATTN_COL_CPU]);
    return 0;
}

int lra_speed_load(const char *path, lra_speed *s)
{
    memset(s, 0, sizeof *s);
    if (access(path, F_OK) != 0)
        return 0;
    int rc = csvw_read_rows(path, add_row, s);
    return rc < 0 ? rc : 0;
}

static const lra_speed_row *flash_row(const lra_speed *s)
{
    for (int r = 0; r < s->n; r++)
        if (!strcmp(s->row[r].label, "flash"))
            return &s->row[r];
    return NULL;
}

int lra_speed_at_longest(const lra_speed *s, const char *label, double *rel, double *rss, int64_t *N)
{
    const lra_speed_row *ref = flash_row(s);
    for (int r = 0; ref && r < s->n; r++) {
        if (strcmp(s->row[r].label, label))
            continue;
        for (int i = s->n_N - 1; i >= 0; i--)
            if (s->row[r].step_ms[i] > 0 && ref->step_ms[i] > 0) {
                *rel = ref->step_ms[i] / s->row[r].step_ms[i], *rss = s->row[r].peak_rss[i], *N = s->N[i];
                return 1;
            }
    }
    return 0;
}

/* "12.3 (2.1×)": steps/s and the ratio to flash's at that N. */
static void speed_cell(const lra_speed_row *r, const lra_speed_row *ref, int i, FILE *f)
{
    if (r->step_ms[i] <= 0) {
        fputs(" — |", f);
        return;
    }
    fprintf(f, " %.3g", 1e3 / r->step_ms[i]);
    if (ref && ref->step_ms[i] > 0)
        fprintf(f, " (%.2f×)", ref->step_ms[i] / r->step_ms[i]);
    fputs(" |", f);
}

static void mem_cell(const lra_speed_row *r, const lra_speed_row *ref, int i, FILE *f)
{
    if (r->peak_rss[i] <= 0) {
        fputs(" — |", f);
        return;
    }
    fprintf(f, " %.0f", r->peak_rss[i] / 1048576.0);
    if (ref && ref->peak_rss[i] > 0)
        fprintf(f, " (%.2f×)", r->peak_rss[i] / ref->peak_rss[i]);
    fputs(" |", f);
}

static void paper_row(const char *label, const lra_speed *s, FILE *f)
{
    for (size_t p = 0; p < sizeof paper / sizeof *paper; p++) {
        if (strcmp(paper[p].row, label))
            continue;
        fprintf(f, "| *paper: %s* |", lra_published_model(paper[p].row));
        for (int i = 0; i < s->n_N; i++) {
            int k = 0;
            while (k < 4 && paper_N[k] != s->N[i])
                k++;
            if (k == 4 || isnan(paper[p].speed[k]))
                fputs(" — |", f);
            else
                fprintf(f, " *%.1f×* |", paper[p].speed[k]);
        }
        /* memory: the paper's columns are 1K and 4K; other lengths get none */
        int lo = s->N[0] == 1024, hi = s->N[s->n_N - 1] == 4096;
        lo ? fprintf(f, " *%.2f×* |", paper[p].mem1k / paper[0].mem1k) : fputs(" — |", f);
        hi ? fprintf(f, " *%.2f×* |\n", paper[p].mem4k / paper[0].mem4k) : fputs(" — |\n", f);
    }
}

void lra_speed_markdown(const lra_speed *s, FILE *f)
{
    if (!s->n)
        return;
    const lra_speed_row *ref = flash_row(s);
    int lo = 0, hi = s->n_N - 1;
    fprintf(f, "\n## Speed and memory (LRA Table 2 analogue)\n\n"
               "Training steps per second of a byte-level Text encoder (2 layers, d_model 64, 2 heads, MLP 128, "
               "batch 8, random bytes: `attnbench bench --suite lra_speed`) and the peak RSS growth of the "
               "training (weights, plan, optimiser, steps), each with its ratio to `flash` at the same length in "
               "the same results file; %s threads on %s. The paper's rows (Tay et al. 2021, Table 2: accelerators, "
               "its own base models, batch 32) give only their ratios to the Transformer (memory: at 1K and "
               "4K); they were written down here without a check against the paper's text, and are "
               "comparable with ours only as ratios.\n\n| model |",
            s->threads, s->cpu);
    for (int i = 0; i < s->n_N; i++)
        fprintf(f, " steps/s N=%lld |", (long long)s->N[i]);
    fprintf(f, " MiB N=%lld | MiB N=%lld |\n|---|", (long long)s->N[lo], (long long)s->N[hi]);
    for (int i = 0; i < s->n_N + 2; i++)
        fputs("---|", f);
    fputc('\n', f);
    for (int r = 0; r < s->n; r++) {
        const lra_speed_row *row = &s->row[r];
        fprintf(f, "| attnbench `%s` |", row->label);
        for (int i = 0; i < s->n_N; i++)
            speed_cell(row, ref, i, f);
        mem_cell(row, ref, lo, f);
        mem_cell(row, ref, hi, f);
        fputc('\n', f);
        paper_row(row->label, s, f);
    }
}
