#include "scaling.h"

#include "csvw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scaling_init(scaling_points *s) { memset(s, 0, sizeof *s); }

void scaling_free(scaling_points *s)
{
    free(s->key);
    free(s->log_n);
    free(s->log_t);
    memset(s, 0, sizeof *s);
}

void scaling_series_key(const csvw_row *row, char key[256])
{
    static const schema_col cols[] = {ATTN_COL_SUITE, ATTN_COL_KERNEL, ATTN_COL_MASK, ATTN_COL_PASS,
                                    ATTN_COL_DTYPE, ATTN_COL_THREADS, ATTN_COL_B, ATTN_COL_H,
                                    ATTN_COL_H_KV,  ATTN_COL_D,      ATTN_COL_DV, ATTN_COL_PARAMS};
    key[0] = '\0';
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        snprintf(key + strlen(key), 256 - strlen(key), "%s|", row->cell[cols[i]]);
    if (strcmp(row->cell[ATTN_COL_N], row->cell[ATTN_COL_N_KV]) != 0)
        snprintf(key + strlen(key), 256 - strlen(key), "N=%s", row->cell[ATTN_COL_N]);
}

/* The run's (log length, log time), or 0 if it has none. */
static int point_of(const scaling_run *run, double *ln, double *lt)
{
    if (!run->ok || !(run->n_kv > 0 && run->median_ms > 0))
        return 0;
    *ln = log(run->n_kv), *lt = log(run->median_ms);
    return 1;
}

void scaling_note(scaling_points *s, const char *series, const scaling_run *run)
{
    double ln, lt;
    if (!point_of(run, &ln, &lt))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        void *k = realloc(s->key, cap * sizeof *s->key);
        if (k)
            s->key = k;
        void *a = realloc(s->log_n, cap * sizeof *s->log_n);
        if (a)
            s->log_n = a;
        void *b = realloc(s->log_t, cap * sizeof *s->log_t);
        if (b)
            s->log_t = b;
        if (!k || !a || !b)
            return; /* out of memory: later rows just get fewer points */
        s->cap = cap;
    }
    snprintf(s->key[s->n], sizeof s->key[s->n], "%s", series);
    s->log_n[s->n] = ln;
    s->log_t[s->n++] = lt;
}

schema_num scaling_exponent(const scaling_points *s, const char *key, const scaling_run *run)
{
    schema_num none = {SCHEMA_NUM_NONE, 0, ""};
    char why[96];
    double ln, lt, lo = log((double)ATTN_SCALING_MIN_N) - 1e-9;
    if (!point_of(run, &ln, &lt))
        return none;
    if (ln < lo) {
        snprintf(why, sizeof why, "N_kv below the fit range (>= %d)", ATTN_SCALING_MIN_N);
        return schema_num_na(why);
    }
    /* Least squares over the distinct lengths; a length seen twice (a rerun)
     * counts with its latest time, which is the row itself when it repeats. */
    double sx = ln, sy = lt, sxx = ln * ln, sxy = ln * lt;
    int m = 1;
    for (size_t i = s->n; i-- > 0;) {
        if (strcmp(s->key[i], key) != 0 || s->log_n[i] < lo || s->log_n[i] >= ln - 1e-9)
            continue;
        int seen = 0;
        for (size_t j = i + 1; j < s->n && !seen; j++)
            seen = strcmp(s->key[j], key) == 0 && fabs(s->log_n[j] - s->log_n[i]) < 1e-9;
        if (seen)
            continue;
        sx += s->log_n[i], sy += s->log_t[i], sxx += s->log_n[i] * s->log_n[i], sxy += s->log_n[i] * s->log_t[i];
        m++;
    }
    double den = m * sxx - sx * sx;
    if (m < 2 || !(fabs(den) > 1e-12)) {
        snprintf(why, sizeof why, "fewer than 2 lengths >= %d in this series", ATTN_SCALING_MIN_N);
        return schema_num_na(why);
    }
    return schema_num_value((m * sxy - sx * sy) / den);
}
