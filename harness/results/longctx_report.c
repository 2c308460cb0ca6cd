#include "longctx_report.h"

#include <math.h>
#include <string.h>

/* A decode shape: a few queries against a longer cache. */
static int is_decode(const fidrep_point *p) { return p->Nk > p->N; }

static double per_token(const fidrep_point *p, double v) { return v / (double)(p->B * p->N); }


/* Of one cache: every shape field but the number of queries, family, mask. */
static int same_cache(const fidrep_point *a, const fidrep_point *b)
{
    return a->Nk == b->Nk && a->D == b->D && a->B == b->B && a->H == b->H && a->H_kv == b->H_kv &&
           !strcmp(a->family, b->family) && !strcmp(a->mask, b->mask);
}

/* The reference of every ratio: exact `decode` answering one query on the
 * same cache (a generated token's cost; a kernel whose rows are successive
 * steps, as recycled's cycle, is compared per token with it), at its default
 * parameters when such a row exists. NULL when the run has none. */
static const fidrep_point *decode_of(const fidrep *r, const fidrep_point *p)
{
    const fidrep_point *best = NULL;
    for (int i = 0; i < r->n; i++) {
        const fidrep_point *q = &r->p[i];
        if (!strcmp(q->kernel, "decode") && q->N == 1 && same_cache(q, p) && (!best || !q->params[0]))
            best = q;
    }
    return best;
}


static double ratio(double a, double b) { return b > 0 && !isnan(a) && !isnan(b) ? a / b : NAN; }

/* p's time and bytes per token over ref's (decode answering one query). */
static double time_ratio(const fidrep_point *p, const fidrep_point *ref)
{
    return ratio(per_token(p, p->time_ms), per_token(ref, ref->time_ms));
}

static double bytes_ratio(const fidrep_point *p, const fidrep_point *ref)
{
    return ratio(per_token(p, p->bytes_read), per_token(ref, ref->bytes_read));
}

static void group_table(const fidrep *r, int from, int to, FILE *f)
{
    const fidrep_point *g = &r->p[from], *ref = decode_of(r, g);
    fprintf(f, "\n## N_kv = %lld, %lld quer%s, B = %lld, H = %lld / H_kv = %lld, D = %lld, inputs `%s`, mask %s\n\n",
            (long long)g->Nk, (long long)g->N, g->N == 1 ? "y" : "ies", (long long)g->B, (long long)g->H,
            (long long)g->H_kv, (long long)g->D, g->family, g->mask);
    fprintf(f, "| kernel | params | µs per token | time vs decode | MiB read per token | bytes vs decode | topk_recall | "
               "rel_fro_err |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = from; i < to; i++) {
        const fidrep_point *p = &r->p[i];
        fprintf(f, "| `%s` | %s |", p->kernel, p->params[0] ? p->params : "defaults");
        fidrep_cell(f, per_token(p, p->time_ms) * 1e3, "%.4g");
        fidrep_cell(f, ref ? time_ratio(p, ref) : NAN, "%.3gx");
        fidrep_cell(f, per_token(p, p->bytes_read) / 1048576.0, "%.4g");
        fidrep_cell(f, ref ? bytes_ratio(p, ref) : NAN, "%.3g");
        fidrep_cell(f, p->exact ? 1.0 : p->recall, "%.3f");
        fidrep_cell(f, p->rel_fro, "%.3g");
        fputc('\n', f);
    }
}

/* Whether p meets the targets against ref. */
static int meets(const fidrep_point *p, const fidrep_point *ref)
{
    return bytes_ratio(p, ref) <= LONGCTX_TARGET_BYTES && 1 / time_ratio(p, ref) >= LONGCTX_TARGET_SPEEDUP &&
           p->recall >= LONGCTX_TARGET_RECALL;
}

static void target_line(const fidrep *r, int from, int to, const char *kernel, const fidrep_point *ref, FILE *f)
{
    const fidrep_point *hit = NULL, *best = NULL;
    for (int i = from; i < to; i++) {
        const fidrep_point *p = &r->p[i];
        if (strcmp(p->kernel, kernel))
            continue;
        if (meets(p, ref) && (!hit || p->time_ms < hit->time_ms))
            hit = p;
        if (!best || (!isnan(p->recall) && (isnan(best->recall) || p->recall > best->recall)))
            best = p;
    }
    const fidrep_point *p = hit ? hit : best;
    fprintf(f, "| `%s` | %s | %s | %.3gx faster | %.3g of decode's | %.3f |\n", kernel, hit ? "yes" : "**no**",
            p->params[0] ? p->params : "defaults", 1 / time_ratio(p, ref), bytes_ratio(p, ref), p->recall);
}

/* Kernels that alternate expensive and cheap steps are judged on the mean
 * cost per token of a whole cycle (one bench row of N successive steps). */
static const struct {
    const char *kernel, *param;
    double max_time;
} cycle_targets[] = {{"recycled", "S=8", 0.5}};

/* Whether ;-separated params hold item exactly. */
static int has_item(const char *params, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = params; p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
        if (!strncmp(p, item, n) && (p[n] == ';' || p[n] == '\0'))
            return 1;
    return 0;
}

static void cycle_section(const fidrep *r, FILE *f)
{
    for (size_t t = 0; t < sizeof cycle_targets / sizeof *cycle_targets; t++) {
        fprintf(f, "\n`%s` with %s: mean time per token over a cycle of successive steps <= %.1fx `decode`'s at "
                   "N_kv = %d on `peaked` inputs:\n",
                cycle_targets[t].kernel, cycle_targets[t].param, cycle_targets[t].max_time, LONGCTX_TARGET_NKV);
        int any = 0;
        for (int i = 0; i < r->n; i++) {
            const fidrep_point *p = &r->p[i], *ref = decode_of(r, p);
            if (strcmp(p->kernel, cycle_targets[t].kernel) || !has_item(p->params, cycle_targets[t].param) ||
                p->Nk != LONGCTX_TARGET_NKV || strcmp(p->family, "peaked") || p->N < 2 || !ref)
                continue;
            double x = time_ratio(p, ref);
            fprintf(f, "\n- %s, %lld steps: %.4g µs per token, %.3gx `decode` (%.4g µs): %s", p->params, (long long)p->N,
                    per_token(p, p->time_ms) * 1e3, x, per_token(ref, ref->time_ms) * 1e3,
                    x <= cycle_targets[t].max_time ? "yes" : "**no**");
            any = 1;
        }
        fputs(any ? "\n" : "\n- no such row (a bench row of N >= 2 successive steps with that parameter).\n", f);
    }
}

static void target_section(const fidrep *r, FILE *f)
{
    fprintf(f, "\n## Target: at N_kv = %d on `peaked` inputs, <= %.0f %% of decode's bytes per token, >= %.0fx faster, "
               "topk_recall >= %.1f\n\n"
               "Per selecting kernel, its fastest configuration that meets all three, or a plain **no** with the "
               "configuration of best recall.\n",
            LONGCTX_TARGET_NKV, 100 * LONGCTX_TARGET_BYTES, LONGCTX_TARGET_SPEEDUP, LONGCTX_TARGET_RECALL);
    int any = 0;
    for (int from = 0; from < r->n;) {
        int to = from + 1;
        while (to < r->n && fidrep_same_group(&r->p[to], &r->p[from]))
            to++;
        const fidrep_point *g = &r->p[from], *ref = decode_of(r, g);
        if (is_decode(g) && g->Nk == LONGCTX_TARGET_NKV && !strcmp(g->family, "peaked")) {
            any = 1;
            fprintf(f, "\n%lld quer%s, H = %lld / H_kv = %lld, D = %lld, mask %s: ", (long long)g->N,
                    g->N == 1 ? "y" : "ies", (long long)g->H, (long long)g->H_kv, (long long)g->D, g->mask);
            if (!ref)
                fprintf(f, "no `decode` row to compare with.\n");
            else {
                fprintf(f, "`decode` takes %.4g µs per token.\n\n| kernel | reached | configuration | time | bytes | "
                           "topk_recall |\n|---|---|---|---|---|---|\n",
                        per_token(ref, ref->time_ms) * 1e3);
                for (int i = from; i < to; i++) {
                    int first = !r->p[i].exact && !isnan(r->p[i].recall);
                    for (int j = from; first && j < i; j++)
                        first = strcmp(r->p[j].kernel, r->p[i].kernel) != 0;
                    if (first)
                        target_line(r, from, to, r->p[i].kernel, ref, f);
                }
            }
        }
        from = to;
    }
    if (!any)
        fprintf(f, "\nThe results have no decode rows at N_kv = %d on `peaked` inputs.\n", LONGCTX_TARGET_NKV);
    cycle_section(r, f);
}

void longctx_markdown(const fidrep *r, FILE *f)
{
    fprintf(f, "# Long-context decode: quality vs time and bytes read per token\n\n");
    fprintf(f, "A few queries against a long KV cache (decode shapes of the results file), every configuration "
               "beside exact `decode` answering one query on the same cache in the same run (the cost of one "
               "generated token; a row of several queries is several successive steps for a kernel such as "
               "`recycled`, and its per-token figures are means over them). Time: median forward time over the "
               "queries of the batch. Bytes: the kernel's own count of bytes it read (SDE counter `bytes_read`; NA "
               "where the counter was unavailable), over the queries. `topk_recall`: share of the oracle's 16 "
               "largest keys the kernel attends (exact kernels: 1). Inputs are generated (docs/fidelity.md); times "
               "are of the machine and run the rows name.\n");
    for (int from = 0; from < r->n;) {
        int to = from + 1;
        while (to < r->n && fidrep_same_group(&r->p[to], &r->p[from]))
            to++;
        if (is_decode(&r->p[from]))
            group_table(r, from, to, f);
        from = to;
    }
    target_section(r, f);
}

void longctx_csv(const fidrep *r, FILE *f)
{
    fidrep_machine_line(r, f);
    fprintf(f, "N_kv,family,kernel,label,us_per_token,mib_per_token,topk_recall,rel_fro_err,exact\n");
    for (int i = 0, last = -1; i < r->n; i++) {
        const fidrep_point *p = &r->p[i];
        if (!is_decode(p))
            continue;
        if (last >= 0 && !fidrep_same_group(p, &r->p[last]))
            fputc('\n', f);
        last = i;
        fprintf(f, "%lld,%s,%s,%s%s%s%s,%.6g,%.6g,%.6g,%.6g,%d\n", (long long)p->Nk, p->family, p->kernel, p->kernel,
                p->params[0] ? "[" : "", p->params, p->params[0] ? "]" : "", per_token(p, p->time_ms) * 1e3,
                per_token(p, p->bytes_read) / 1048576.0, p->exact ? 1.0 : p->recall, p->rel_fro, p->exact);
    }
}
