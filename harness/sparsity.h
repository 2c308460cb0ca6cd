/* Sparsity efficiency (SUITES.md 4.3): eff = t_dense * density / t_masked,
 * where t_dense is the fastest full-mask time of any kernel at the same
 * problem shape. 1 means a masked run realises the whole saving its density
 * promises. A sweep runs full-mask jobs first and notes their times here. */
#ifndef ATTN_SPARSITY_H
#define ATTN_SPARSITY_H

#include "schema.h"

#include <stddef.h>

typedef struct {
    char (*key)[160];
    double *best_ms;
    size_t n, cap;
} attn_dense_refs;

void attn_dense_refs_init(attn_dense_refs *r);
void attn_dense_refs_free(attn_dense_refs *r);

/* Records the row's median time if it is a finished full-mask row. */
void attn_dense_refs_note(attn_dense_refs *r, const attn_row *row);

/* Fills SPARSITY_EFF of a finished masked row from the reference at its
 * shape, or "NA:<why>" when there is none. Full-mask rows and rows that are
 * not ok are left alone. */
void attn_dense_refs_fill(const attn_dense_refs *r, attn_row *row);

#endif
