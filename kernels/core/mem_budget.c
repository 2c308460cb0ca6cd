/* The memory-budget mode: a search over the sizes a kernel names in
 * budget_params, each setting planned by the kernel itself. */
#include "mem_budget.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BUDGET_CANDIDATES 48 /* the default and powers of two up to 2^46 */

typedef struct {
    int64_t def[ATTN_BUDGET_KNOBS];
    int given[ATTN_BUDGET_KNOBS];    /* the params set it: it is not searched */
    int64_t cand[ATTN_BUDGET_KNOBS][BUDGET_CANDIDATES];
    int n_cand[ATTN_BUDGET_KNOBS];
} budget_space;

/* The knob names of budget_params into c, each an integer row of the table. */
static int read_names(const attn_kernel *k, attn_budget_choice *c, const opt_def **rows)
{
    memset(c, 0, sizeof *c);
    for (const char *p = k->budget_params; *p; c->n++) {
        size_t len = strcspn(p, ",");
        if (c->n == ATTN_BUDGET_KNOBS || len == 0 || len >= sizeof c->name[0])
            return attn_fail(ATTN_EINVAL, "kernel '%s': budget_params '%s': expected at most %d names", k->name,
                             k->budget_params, ATTN_BUDGET_KNOBS);
        memcpy(c->name[c->n], p, len);
        rows[c->n] = opt_find(k->params, c->name[c->n]);
        if (!rows[c->n] || rows[c->n]->type != OPT_INT)
            return attn_fail(ATTN_EINVAL, "kernel '%s': budget_params names '%s', expected an integer row of its "
                             "params", k->name, c->name[c->n]);
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The largest candidate: a size past the problem's longest axis changes
 * nothing the mode cares about, so the search stops at its power of two. */
static int64_t knob_cap(const attn_args *a, const opt_def *row, int64_t def)
{
    int64_t longest = a->Nq > a->Nk ? a->Nq : a->Nk, cap = 1;
    while (cap < longest && cap < ((int64_t)1 << 46))
        cap *= 2;
    cap = cap > def ? cap : def;
    return cap < (int64_t)row->hi ? cap : (int64_t)row->hi;
}

/* Defaults, which knobs the params fix, and each free knob's candidates:
 * its default first, then the powers of two in the row's range. */
static int read_space(const attn_kernel *k, const attn_args *a, const attn_budget_choice *c, const opt_def **rows,
                      budget_space *s)
{
    memset(s, 0, sizeof *s);
    attn_args full = *a;
    attn_args_defaults(&full); /* defaults may read threads */
    if (k->budget_defaults)
        k->budget_defaults(&full, s->def);
    int rc = 0;
    for (int i = 0; i < c->n; i++) {
        if (!k->budget_defaults)
            s->def[i] = (int64_t)rows[i]->def;
        s->given[i] = param_bag_get(&a->params, c->name[i]) != NULL;
        int64_t v = s->given[i] ? attn_param_int(a, k->params, c->name[i], &rc) : s->def[i];
        if (rc)
            return rc;
        s->def[i] = v;
        s->cand[i][s->n_cand[i]++] = v;
        for (int64_t p = 1, cap = knob_cap(a, rows[i], v); !s->given[i] && p <= cap; p *= 2)
            if (p >= (int64_t)rows[i]->lo && p != v && s->n_cand[i] < BUDGET_CANDIDATES)
                s->cand[i][s->n_cand[i]++] = p;
    }
    return 0;
}

/* a's params with the free knobs set to v. */
static int with_knobs(const attn_args *a, const attn_budget_choice *c, const budget_space *s, const int64_t *v,
                      attn_args *out)
{
    *out = *a;
    for (int i = 0; i < c->n; i++) {
        char kv[96];
        snprintf(kv, sizeof kv, "%s=%lld", c->name[i], (long long)v[i]);
        int rc = s->given[i] ? 0 : param_bag_add(&out->params, kv);
        if (rc)
            return rc;
    }
    return 0;
}

/* The planned workspace of setting v: any budget, so the kernel plans its
 * budgeted path (flash leaves its gathered index) while the guard of
 * attn_ctx_plan never trips; the search compares the sizes itself. */
static int plan_setting(const attn_kernel *k, const attn_args *a, const attn_budget_choice *c,
                        const budget_space *s, const int64_t *v, size_t *ws)
{
    attn_args t;
    int rc = with_knobs(a, c, s, v, &t);
    t.mem_budget = UINT64_MAX;
    return rc ? rc : attn_ctx_plan(k, &t, ws);
}

/* Powers of two between setting v and the defaults: the tie-break. */
static double distance(const attn_budget_choice *c, const budget_space *s, const int64_t *v)
{
    double d = 0;
    for (int i = 0; i < c->n; i++)
        d += fabs(log2((double)v[i]) - log2((double)s->def[i]));
    return d;
}

/* Plans every setting: best gets the fitting one the mode prefers
 * (*found), least_v the one with the smallest workspace. */
static int search(const attn_kernel *k, const attn_args *a, attn_budget_choice *c, const budget_space *s,
                  int64_t *least_v, int *found)
{
    int idx[ATTN_BUDGET_KNOBS] = {0};
    double best_dist = 0;
    int planned = 0;
    *found = 0;
    for (;;) {
        int64_t v[ATTN_BUDGET_KNOBS];
        for (int i = 0; i < c->n; i++)
            v[i] = s->cand[i][idx[i]];
        size_t ws;
        /* a setting the kernel refuses (a size its mask or shape rules out) is not a candidate */
        if (!plan_setting(k, a, c, s, v, &ws)) {
            if (!planned++ || ws < c->least)
                c->least = ws, memcpy(least_v, v, sizeof v);
            double d = distance(c, s, v);
            if (ws <= a->mem_budget && (!*found || ws > c->workspace || (ws == c->workspace && d < best_dist)))
                *found = 1, c->workspace = ws, best_dist = d, memcpy(c->value, v, sizeof v);
        }
        int i = 0;
        while (i < c->n && ++idx[i] == s->n_cand[i])
            idx[i++] = 0;
        if (i == c->n)
            break;
    }
    return planned ? 0 : ATTN_EUNSUPPORTED;
}

/* "br=1,bc=16" */
static void format_setting(const attn_budget_choice *c, const int64_t *v, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < c->n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%lld", i ? "," : "", c->name[i], (long long)v[i]);
}

int attn_budget_fit(const attn_kernel *k, attn_args *a, attn_budget_choice *out)
{
    attn_budget_choice c;
    memset(&c, 0, sizeof c);
    if (out)
        *out = c;
    if (!a->mem_budget)
        return 0;
    if (!k->budget_params)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': does not claim the memory-budget mode (--mem-budget)",
                         k->name);
    const opt_def *rows[ATTN_BUDGET_KNOBS];
    budget_space s;
    int rc = read_names(k, &c, rows);
    if (rc || (rc = read_space(k, a, &c, rows, &s)) != 0)
        return rc;
    size_t ws;
    /* the defaults first: a budget they meet changes nothing but the record */
    if ((rc = plan_setting(k, a, &c, &s, s.def, &ws)) != 0)
        return rc;
    int64_t least_v[ATTN_BUDGET_KNOBS];
    int found = ws <= a->mem_budget;
    if (found)
        c.workspace = ws, c.least = ws, memcpy(c.value, s.def, sizeof s.def);
    else if ((rc = search(k, a, &c, &s, least_v, &found)) != 0)
        return rc;
    if (!found) {
        char setting[128];
        format_setting(&c, least_v, setting, sizeof setting);
        memcpy(c.value, least_v, sizeof least_v);
        if (out)
            *out = c;
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' N=%lld N_kv=%lld D=%lld: no %s setting fits --mem-budget "
                         "%llu B; the least budget it can meet is %zu B (%s)", k->name, (long long)a->Nq,
                         (long long)a->Nk, (long long)a->D, k->budget_params, (unsigned long long)a->mem_budget,
                         c.least, setting);
    }
    attn_args chosen;
    if ((rc = with_knobs(a, &c, &s, c.value, &chosen)) != 0)
        return rc;
    *a = chosen;
    if (out)
        *out = c;
    return 0;
}
