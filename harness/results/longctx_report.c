#include "longctx_report.h"

#include <math.h>
#include <string.h>

/* A decode shape: a few queries against a longer cache. */
static int is_decode(const fidrep_point *p) { return p->Nk > p->N; }

static double per_token(const fidrep_point *p, double v) { return v / (double)(p->B * p->N); }


/* The exact `decode` row of p's group (the reference of every ratio), or NULL. */
static const fidrep_point *decode_of(const fidrep *r, const fidrep_point *p)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->p[i].kernel, "decode") && !r->p[i].params[0] && fidrep_same_group(&r->p[i], p))
            return &r->p[i];
    for (int i = 0; i < r->n; i++) /* decode with tile parameters */
        if (!strcmp(r->p[i].kernel, "decode") && fidrep_same_group(&r->p[i], p))
            return &r->p[i];
    return NULL;
}


static double ratio(double a, double b) { return b > 0 && !isnan(a) && !isnan(b) ? a / b : NAN; }

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
        fidrep_cell(f, ref ? ratio(p->time_ms, ref->time_ms) : NAN, "%.3gx");
        fidrep_cell(f, per_token(p, p->bytes_read) / 1048576.0, "%.4g");
        fidrep_cell(f, ref ? ratio(p->bytes_read, ref->bytes_read) : NAN, "%.3g");
        fidrep_cell(f, p->exact ? 1.0 : p->recall, "%.3f");
        fidrep_cell(f, p->rel_fro, "%.3g");
        fputc('\n', f);
    }
}

/* Whether p meets the targets against ref. */
static int meets(const fidrep_point *p, const fidrep_point *ref)
{
    return ratio(p->bytes_read, ref->bytes_read) <= LONGCTX_TARGET_BYTES &&
           ratio(ref->time_ms, p->time_ms) >= LONGCTX_TARGET_SPEEDUP && p->recall >= LONGCTX_TARGET_RECALL;
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
            p->params[0] ? p->params : "defaults", ratio(ref->time_ms, p->time_ms), ratio(p->bytes_read, ref->bytes_read),
            p->recall);
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
}

void longctx_markdown(const fidrep *r, FILE *f)
{
    fprintf(f, "# Long-context decode: quality vs time and bytes read per token\n\n");
    fprintf(f, "A few queries against a long KV cache (decode shapes of the results file), every configuration "
               "beside exact `decode` on the same cache in the same run. Time: median forward time over the "
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
