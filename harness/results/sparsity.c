#include "sparsity.h"

#include "csvw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sparsity_refs_init(sparsity_refs *r) { memset(r, 0, sizeof *r); }

void sparsity_refs_free(sparsity_refs *r)
{
    free(r->key);
    free(r->best_ms);
    memset(r, 0, sizeof *r);
}

void sparsity_shape_key(const csvw_row *row, char key[160])
{
    static const schema_col cols[] = {ATTN_COL_SUITE, ATTN_COL_PASS, ATTN_COL_THREADS, ATTN_COL_B,
                                    ATTN_COL_H,     ATTN_COL_H_KV, ATTN_COL_N,       ATTN_COL_N_KV,
                                    ATTN_COL_D,     ATTN_COL_DTYPE};
    key[0] = '\0';
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        snprintf(key + strlen(key), 160 - strlen(key), "%s|", row->cell[cols[i]]);
}

static long find(const sparsity_refs *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], key) == 0)
            return (long)i;
    return -1;
}

void sparsity_refs_note(sparsity_refs *r, const char *shape, const sparsity_run *run)
{
    double t = run->median_ms;
    if (!run->ok || !run->dense || !(t > 0))
        return;
    long i = find(r, shape);
    if (i >= 0) {
        if (t < r->best_ms[i])
            r->best_ms[i] = t;
        return;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        void *k = realloc(r->key, cap * sizeof *r->key), *b = realloc(r->best_ms, cap * sizeof *r->best_ms);
        if (k)
            r->key = k;
        if (b)
            r->best_ms = b;
        if (!k || !b)
            return; /* out of memory: the row just gets no efficiency */
        r->cap = cap;
    }
    snprintf(r->key[r->n], sizeof r->key[r->n], "%s", shape);
    r->best_ms[r->n++] = t;
}

schema_num sparsity_refs_eff(const sparsity_refs *r, const char *shape, const sparsity_run *run)
{
    schema_num none = {SCHEMA_NUM_NONE, 0, ""};
    if (!run->ok || run->dense)
        return none;
    long i = find(r, shape);
    if (i < 0 || !(run->median_ms > 0))
        return schema_num_na("no full-mask run at this shape");
    return schema_num_value(r->best_ms[i] * run->density / run->median_ms);
}
