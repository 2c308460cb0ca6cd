/* Sparsity efficiency: eff = t_dense * density / t_masked,
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

/* A finished run as the references see it. */
typedef struct {
    int ok;              /* finished without error */
    int dense;           /* full mask: a reference, never judged against one */
    double median_ms, density;
} sparsity_run;

/* The shape a dense reference stands for, from a row's identity cells:
 * everything but kernel, mask and params. */
void sparsity_shape_key(const csvw_row *identity, char key[160]);

/* Records the run's median time at `shape` if it is a finished full-mask run. */
void sparsity_refs_note(sparsity_refs *r, const char *shape, const sparsity_run *run);

/* The efficiency of a finished masked run from the reference at its shape,
 * NA (why) when there is none; NONE for full-mask runs and runs that are not
 * ok. */
schema_num sparsity_refs_eff(const sparsity_refs *r, const char *shape, const sparsity_run *run);

#endif
