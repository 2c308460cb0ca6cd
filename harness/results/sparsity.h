/* Sparsity efficiency (docs/measurement.md): eff = t_dense * density / t_masked,
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
} sparsity_refs;

void sparsity_refs_init(sparsity_refs *r);
void sparsity_refs_free(sparsity_refs *r);

/* Records the row's median time if it is a finished full-mask row. */
void sparsity_refs_note(sparsity_refs *r, const csvw_row *row);

/* Fills SPARSITY_EFF of a finished masked row from the reference at its
 * shape, or "NA:<why>" when there is none. Full-mask rows and rows that are
 * not ok are left alone. */
void sparsity_refs_fill(const sparsity_refs *r, csvw_row *row);

#endif
