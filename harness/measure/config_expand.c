/* Expanding a sweep config into its flat, ordered list of typed jobs
 * (order in config.h), with suite and kernel filters, and the check that
 * entries sharing a suite name do not repeat a job. */
#include "config.h"
#include "config_json.h"
#include "bench_fit.h"

#include "common/attn_error.h"
#include "kernels/core/mask.h"
#include "kernels/core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The grid of one entry, outermost dimension first (see config.h). The
 * kernel and its params entries form one dimension of "variants". */
enum { G_THREADS, G_VARIANT, G_MASK, G_PASS, G_INPUTS, G_KVDT, G_DT, G_B, G_H, G_HKV, G_D, G_DV, G_N, G_NKV, G_LENS, G_BUDGET, G__COUNT };

typedef struct {
    const attn_kernel *kernel;
    const param_bag *params;    /* NULL: the kernel's defaults */
} variant;

static int kernel_selected(const char *kernel, const cfg_filter *f)
{
    if (!f || !f->kernels)
        return 1;
    for (size_t i = 0; i < f->n_kernels; i++)
        if (strcmp(f->kernels[i], kernel) == 0)
            return 1;
    return 0;
}

/* The (kernel, params) pairs of an entry: one per params entry naming the
 * kernel, or the kernel's defaults when none does. Kernels are resolved in
 * the registry here. */
static int suite_variants(const cfg_config *cfg, const cfg_suite *s, const cfg_filter *f, variant *out, size_t *n)
{
    *n = 0;
    for (size_t k = 0; k < s->kernels.n; k++) {
        if (!kernel_selected(s->kernels.v[k], f))
            continue;
        const attn_kernel *kernel = attn_find_kernel(s->kernels.v[k]);
        if (!kernel)
            return attn_fail(ATTN_EINVAL, "%s: suite '%s': %s", cfg->path, s->name, attn_last_error());
        size_t before = *n;
        char owner[96];
        snprintf(owner, sizeof owner, "kernel '%s'", kernel->name);
        for (size_t p = 0; p < s->params.n; p++) {
            if (strcmp(s->params.v[p].kernel, s->kernels.v[k]) != 0)
                continue;
            /* checked against the kernel's table now: a bad key is a config error, not an error row per job */
            if (attn_params_validate(kernel, &s->params.v[p].params, owner))
                return attn_fail(ATTN_EINVAL, "%s: suite '%s': %s", cfg->path, s->name, attn_last_error());
            out[(*n)++] = (variant){kernel, &s->params.v[p].params};
        }
        if (*n == before)
            out[(*n)++] = (variant){kernel, NULL};
    }
    return 0;
}

/* The settings every job of the config shares. */
static bench_job job_base(const cfg_config *cfg, const cfg_suite *s)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.suite, sizeof j.suite, "%s", s->name);
    j.seed = s->seed;
    j.max_workspace_bytes = (size_t)cfg->max_workspace_bytes;
    j.limits = (bench_limits){cfg->max_time_s, cfg->max_mem_bytes};
    j.measure = (measure_opts){(int)cfg->measure.warmup, (int)cfg->measure.min_reps, (int)cfg->measure.max_reps,
                               cfg->measure.min_time_s};
    return j;
}

/* A batch of its own lengths sets B; a ragged one's longest sets N_kv, a
 * padded one is N long (self-attention). */
static void apply_lens(const bench_lens *l, bench_job *j)
{
    j->lens = *l;
    j->args.B = l->n;
    j->args.Nk = l->kind == BENCH_LENS_PADDED_SEQ ? j->args.Nq : 0;
    for (int i = 0; l->kind == BENCH_LENS_RAGGED_KV && i < l->n; i++)
        j->args.Nk = l->len[i] > j->args.Nk ? l->len[i] : j->args.Nk;
}

/* Job number t of the entry's grid (dims as in expand_suite). */
static void grid_job(const cfg_config *cfg, const cfg_suite *s, const variant *vars, const size_t dim[G__COUNT],
                     size_t t, bench_job *j)
{
    size_t ix[G__COUNT];
    for (int d = G__COUNT - 1; d >= 0; d--) {
        ix[d] = t % dim[d];
        t /= dim[d];
    }
    const variant *v = &vars[ix[G_VARIANT]];
    *j = job_base(cfg, s);
    j->kernel = v->kernel;
    attn_args *a = &j->args;
    if (v->params)
        a->params = *v->params;
    a->mask = s->masks.v[ix[G_MASK]];
    j->pass = s->passes.v[ix[G_PASS]];
    j->inputs = s->inputs.v[ix[G_INPUTS]];
    a->kv_dtype = s->kv_dtypes.v[ix[G_KVDT]];
    a->dtype = s->dtypes.v[ix[G_DT]];
    a->threads = (int)s->threads.v[ix[G_THREADS]];
    a->B = s->B.v[ix[G_B]];
    a->H = s->H.v[ix[G_H]];
    a->H_kv = s->H_kv.n ? s->H_kv.v[ix[G_HKV]] : a->H;
    a->D = s->D.v[ix[G_D]];
    a->Dv = s->Dv.n ? s->Dv.v[ix[G_DV]] : a->D;
    a->Nq = s->N.v[ix[G_N]];
    a->Nk = s->N_kv.n ? s->N_kv.v[ix[G_NKV]] : a->Nq;
    if (s->lens.n)
        apply_lens(&s->lens.v[ix[G_LENS]], j);
    a->mem_budget = s->mem_budget.n ? (uint64_t)s->mem_budget.v[ix[G_BUDGET]] : 0;
    /* the sizes chosen under the budget name the job; a budget no setting
     * meets leaves them out, and the job's run says why it is skipped */
    bench_budget_fit(j);
}

/* Counts the entry's jobs into *count and writes them to out (unless NULL). */
static int expand_suite(const cfg_config *cfg, size_t entry, const cfg_filter *f, cfg_job *out, size_t *count)
{
    const cfg_suite *s = &cfg->suites[entry];
    variant *vars = malloc((s->kernels.n + s->params.n) * sizeof *vars);
    if (!vars)
        return attn_fail(ATTN_ENOMEM, "suite %s: out of memory", s->name);
    size_t n_vars;
    int rc = suite_variants(cfg, s, f, vars, &n_vars);
    size_t dim[G__COUNT] = {
        [G_THREADS] = s->threads.n, [G_VARIANT] = n_vars, [G_MASK] = s->masks.n,
        [G_PASS] = s->passes.n, [G_INPUTS] = s->inputs.n, [G_KVDT] = s->kv_dtypes.n, [G_DT] = s->dtypes.n, [G_B] = s->B.n, [G_H] = s->H.n, [G_HKV] = s->H_kv.n ? s->H_kv.n : 1,
        [G_D] = s->D.n, [G_DV] = s->Dv.n ? s->Dv.n : 1, [G_N] = s->N.n, [G_NKV] = s->N_kv.n ? s->N_kv.n : 1,
        [G_LENS] = s->lens.n ? s->lens.n : 1, [G_BUDGET] = s->mem_budget.n ? s->mem_budget.n : 1,
    };
    size_t total = 1;
    for (int d = 0; d < G__COUNT; d++)
        total *= dim[d];
    for (size_t t = 0; !rc && out && t < total; t++) {
        grid_job(cfg, s, vars, dim, t, &out[t].job);
        out[t].entry = entry;
    }
    free(vars);
    *count = total;
    return rc;
}

static int suite_selected(const cfg_suite *s, const cfg_filter *f)
{
    return !f || !f->suite || strcmp(f->suite, s->name) == 0;
}

static int check_filter(const cfg_config *cfg, const cfg_filter *f)
{
    if (!f)
        return 0;
    char names[512] = "";
    int any = 0;
    for (size_t i = 0; i < cfg->n_suites; i++) {
        any |= suite_selected(&cfg->suites[i], f);
        cfg_list_add(names, sizeof names, cfg->suites[i].name);
    }
    if (!any)
        return attn_fail(ATTN_EINVAL, "suite filter '%s': expected one of %s (the suites of %s)", f->suite, names,
                         cfg->path);
    for (size_t k = 0; f->kernels && k < f->n_kernels; k++) {
        int found = 0;
        names[0] = '\0';
        for (size_t i = 0; i < cfg->n_suites; i++)
            for (size_t j = 0; suite_selected(&cfg->suites[i], f) && j < cfg->suites[i].kernels.n; j++) {
                const char *kn = cfg->suites[i].kernels.v[j];
                found |= strcmp(kn, f->kernels[k]) == 0;
                cfg_list_add(names, sizeof names, kn);
            }
        if (!found)
            return attn_fail(ATTN_EINVAL, "kernel filter '%s': expected one of %s (the kernels of the selected "
                             "suites of %s)", f->kernels[k], names, cfg->path);
    }
    return 0;
}

int cfg_expand_filtered(const cfg_config *cfg, const cfg_filter *f, cfg_job **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    int rc = check_filter(cfg, f);
    if (rc)
        return rc;
    size_t total = 0, count = 0;
    for (size_t i = 0; i < cfg->n_suites; i++) {
        if (suite_selected(&cfg->suites[i], f) && (rc = expand_suite(cfg, i, f, NULL, &count)))
            return rc;
        total += suite_selected(&cfg->suites[i], f) ? count : 0;
    }
    cfg_job *out = malloc((total ? total : 1) * sizeof *out);
    if (!out)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory expanding %zu jobs", cfg->path, total);
    for (size_t i = 0; i < cfg->n_suites && !rc; i++)
        if (suite_selected(&cfg->suites[i], f) && !(rc = expand_suite(cfg, i, f, out + *n, &count)))
            *n += count;
    if (rc) {
        free(out);
        *n = 0;
        return rc;
    }
    *jobs = out;
    return 0;
}

int cfg_expand(const cfg_config *cfg, cfg_job **jobs, size_t *n)
{
    return cfg_expand_filtered(cfg, NULL, jobs, n);
}

static int bag_cmp(const param_bag *a, const param_bag *b)
{
    int c = a->n - b->n;
    for (int i = 0; !c && i < a->n; i++)
        if (!(c = strcmp(a->key[i], b->key[i])))
            c = strcmp(a->val[i], b->val[i]);
    return c;
}

/* Orders jobs by every field: 0 means the same job. Masks and parameters
 * compare by their canonical text, which is what tells two of them apart. */
static int job_key_cmp(const cfg_job *ja, const cfg_job *jb)
{
    const bench_job *a = &ja->job, *b = &jb->job;
    char ma[128], mb[128];
    attn_mask_format(&a->args.mask, ma, sizeof ma);
    attn_mask_format(&b->args.mask, mb, sizeof mb);
    int c;
    if ((c = strcmp(a->suite, b->suite)) || (c = strcmp(a->kernel->name, b->kernel->name)) || (c = strcmp(ma, mb)) ||
        (c = (int)a->pass - (int)b->pass) || (c = bench_inputs_cmp(&a->inputs, &b->inputs)) || (c = bag_cmp(&a->args.params, &b->args.params)) ||
        (c = (int)a->lens.kind - (int)b->lens.kind) || (c = a->lens.n - b->lens.n) ||
        (c = memcmp(a->lens.len, b->lens.len, (size_t)a->lens.n * sizeof *a->lens.len)))
        return c;
    const attn_args *x = &a->args, *y = &b->args;
    const int64_t u[] = {x->B, x->H, x->H_kv, x->Nq, x->Nk, x->D, x->Dv, x->threads, (int64_t)a->seed, x->kv_dtype, x->dtype,
                         (int64_t)x->mem_budget};
    const int64_t v[] = {y->B, y->H, y->H_kv, y->Nq, y->Nk, y->D, y->Dv, y->threads, (int64_t)b->seed, y->kv_dtype, y->dtype,
                         (int64_t)y->mem_budget};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        if (u[i] != v[i])
            return u[i] < v[i] ? -1 : 1;
    return 0;
}

static int job_cmp(const void *pa, const void *pb)
{
    const cfg_job *a = *(const cfg_job *const *)pa, *b = *(const cfg_job *const *)pb;
    int c = job_key_cmp(a, b);
    return c ? c : (a > b) - (a < b);   /* equal jobs in file order: the earlier comes first */
}

/* Entries sharing a suite name must not repeat a job: it would run twice and
 * write two rows with one job_id. (Repeats within an entry are impossible:
 * its lists hold distinct values.) */
int cfg_check_distinct_jobs(const cfg_config *cfg)
{
    cfg_job *jobs;
    size_t n;
    int rc = cfg_expand(cfg, &jobs, &n);
    const cfg_job **by = rc ? NULL : malloc((n ? n : 1) * sizeof *by);
    if (!rc && !by)
        rc = attn_fail(ATTN_ENOMEM, "%s: out of memory checking %zu jobs", cfg->path, n);
    for (size_t i = 0; by && i < n; i++)
        by[i] = &jobs[i];
    if (by)
        qsort(by, n, sizeof *by, job_cmp);
    for (size_t i = 1; by && !rc && i < n; i++) {
        const cfg_job *a = by[i - 1], *b = by[i];
        if (job_key_cmp(a, b) != 0)
            continue;
        const bench_job *j = &b->job;
        char mask[128];
        attn_mask_format(&j->args.mask, mask, sizeof mask);
        rc = attn_fail(ATTN_EINVAL, "%s: $.suites[%zu]: expected jobs distinct from $.suites[%zu], found kernel "
                       "%s mask %s pass %s N %lld D %lld threads %d in both", cfg->path, b->entry, a->entry,
                       j->kernel->name, mask, bench_pass_name(j->pass), (long long)j->args.Nq, (long long)j->args.D,
                       j->args.threads);
    }
    free(by);
    free(jobs);
    return rc;
}
