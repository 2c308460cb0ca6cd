#include "mask.h"

#include "attn_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name, *help;
} kind_info[ATTN_MASK__COUNT] = {
    [ATTN_MASK_FULL] = {"full", "every query attends every key"},
    [ATTN_MASK_CAUSAL] = {"causal", "key position <= query position (bottom-right aligned)"},
    [ATTN_MASK_WINDOW] = {"window", "sliding window -wr <= qpos-kpos <= wl; params wl, wr, w (both), causal=1"},
};

const char *attn_mask_kind_name(attn_mask_kind kind)
{
    return (unsigned)kind < ATTN_MASK__COUNT ? kind_info[kind].name : NULL;
}

const char *attn_mask_kind_help(attn_mask_kind kind)
{
    return (unsigned)kind < ATTN_MASK__COUNT ? kind_info[kind].help : NULL;
}

/* Allowed deltas of the kind as a closed interval [*dlo, *dhi] (INT64 bounds
 * stand for unbounded). Every kind implemented so far is an interval in delta. */
static void delta_interval(const attn_mask *m, int64_t *dlo, int64_t *dhi)
{
    *dlo = INT64_MIN / 4;
    *dhi = INT64_MAX / 4;
    if (m->kind == ATTN_MASK_WINDOW) {
        *dlo = -m->wr;
        *dhi = m->wl;
    }
    if ((m->causal || m->kind == ATTN_MASK_CAUSAL) && *dlo < 0)
        *dlo = 0;
}

attn_tile attn_mask_tile(const attn_mask *m, int64_t pi0, int64_t pi1, int64_t pj0, int64_t pj1)
{
    if (pi1 <= pi0 || pj1 <= pj0)
        return ATTN_TILE_EMPTY;
    int64_t dlo, dhi;
    delta_interval(m, &dlo, &dhi);
    int64_t tmin = pi0 - (pj1 - 1), tmax = (pi1 - 1) - pj0;
    if (dlo > dhi || tmax < dlo || tmin > dhi)
        return ATTN_TILE_EMPTY;
    if (tmin >= dlo && tmax <= dhi)
        return ATTN_TILE_FULL;
    return ATTN_TILE_PARTIAL;
}

void attn_mask_row_range(const attn_mask *m, int64_t pi, int64_t pj0, int64_t pj1,
                         int64_t *lo, int64_t *hi)
{
    int64_t dlo, dhi;
    delta_interval(m, &dlo, &dhi);
    /* dlo <= pi - pj <= dhi  <=>  pi - dhi <= pj <= pi - dlo */
    int64_t a = pi - dhi, b = pi - dlo + 1;
    *lo = a > pj0 ? a : pj0;
    *hi = b < pj1 ? b : pj1;
    if (*hi < *lo)
        *hi = *lo;
}

double attn_mask_pairs(const attn_mask *m, int64_t Nq, int64_t Nk, int64_t q_off, int64_t k_off)
{
    double pairs = 0;
    for (int64_t i = 0; i < Nq; i++) {
        int64_t lo, hi;
        attn_mask_row_range(m, q_off + i, k_off, k_off + Nk, &lo, &hi);
        pairs += (double)(hi - lo);
    }
    return pairs;
}

static int parse_nonneg(const char *spec, const char *key, const char *val, int64_t *out)
{
    char *end;
    long long v = strtoll(val, &end, 10);
    if (*val == '\0' || *end != '\0' || v < 0)
        return attn_fail(ATTN_EINVAL, "mask '%s': %s expects a non-negative integer, found '%s'",
                         spec, key, val);
    *out = v;
    return 0;
}

int attn_mask_parse(const char *spec, attn_mask *out)
{
    char buf[256];
    if (!spec || strlen(spec) >= sizeof buf)
        return attn_fail(ATTN_EINVAL, "mask spec missing or longer than %zu characters",
                         sizeof buf - 1);
    strcpy(buf, spec);
    char *params = strchr(buf, ':');
    if (params)
        *params++ = '\0';

    memset(out, 0, sizeof *out);
    int kind = -1;
    for (int k = 0; k < ATTN_MASK__COUNT; k++)
        if (strcmp(buf, kind_info[k].name) == 0)
            kind = k;
    if (kind < 0) {
        char names[256] = "";
        for (int k = 0; k < ATTN_MASK__COUNT; k++) {
            strcat(names, k ? ", " : "");
            strcat(names, kind_info[k].name);
        }
        return attn_fail(ATTN_EINVAL, "unknown mask '%s': expected one of %s", buf, names);
    }
    out->kind = (attn_mask_kind)kind;

    int have_w = 0;
    for (char *tok = params ? strtok(params, ",") : NULL; tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return attn_fail(ATTN_EINVAL, "mask '%s': expected key=value, found '%s'", spec, tok);
        *eq = '\0';
        const char *key = tok, *val = eq + 1;
        int64_t v = 0;
        int rc = parse_nonneg(spec, key, val, &v);
        if (rc)
            return rc;
        if (strcmp(key, "causal") == 0 && v <= 1)
            out->causal = (int)v;
        else if (out->kind == ATTN_MASK_WINDOW && strcmp(key, "wl") == 0)
            out->wl = v, have_w = 1;
        else if (out->kind == ATTN_MASK_WINDOW && strcmp(key, "wr") == 0)
            out->wr = v, have_w = 1;
        else if (out->kind == ATTN_MASK_WINDOW && strcmp(key, "w") == 0)
            out->wl = out->wr = v, have_w = 1;
        else
            return attn_fail(ATTN_EINVAL, "mask '%s': unknown parameter '%s=%s' (%s takes %s)",
                             spec, key, val, kind_info[kind].name,
                             out->kind == ATTN_MASK_WINDOW ? "wl, wr, w, causal=0|1" : "causal=0|1");
    }
    if (out->kind == ATTN_MASK_WINDOW && !have_w)
        return attn_fail(ATTN_EINVAL, "mask '%s': window needs a width (w=, wl= or wr=)", spec);
    if (out->kind == ATTN_MASK_CAUSAL)
        out->causal = 1;
    return 0;
}

void attn_mask_format(const attn_mask *m, char *buf, int len)
{
    if (m->kind == ATTN_MASK_WINDOW)
        snprintf(buf, len, "window:wl=%lld,wr=%lld%s", (long long)m->wl, (long long)m->wr,
                 m->causal ? ",causal=1" : "");
    else if (m->kind == ATTN_MASK_FULL && m->causal)
        snprintf(buf, len, "causal");
    else
        snprintf(buf, len, "%s", attn_mask_kind_name(m->kind));
}
