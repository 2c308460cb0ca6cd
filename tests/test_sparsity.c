/* Sparsity efficiency: masked runs are judged against the fastest full-mask
 * run at the same shape, and say NA when there is none. */
#include "harness/results/csvw.h"
#include "harness/results/sparsity.h"

#include <criterion/criterion.h>
#include <string.h>

/* The shape key of a masks-suite row at length N (kernel and mask are not part of it). */
static const char *shape(const char *N)
{
    static char key[160];
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "masks");
    csvw_row_set(&r, ATTN_COL_PASS, "fwd");
    csvw_row_set(&r, ATTN_COL_THREADS, "2");
    csvw_row_set(&r, ATTN_COL_B, "1");
    csvw_row_set(&r, ATTN_COL_H, "2");
    csvw_row_set(&r, ATTN_COL_H_KV, "2");
    csvw_row_set(&r, ATTN_COL_N, "%s", N);
    csvw_row_set(&r, ATTN_COL_N_KV, "%s", N);
    csvw_row_set(&r, ATTN_COL_D, "64");
    sparsity_shape_key(&r, key);
    return key;
}

Test(sparsity, efficiency_uses_the_fastest_dense_kernel_at_the_same_shape)
{
    sparsity_refs refs;
    sparsity_refs_init(&refs);
    const sparsity_run slow = {1, 1, 40, 1}, fast = {1, 1, 10, 1}, other = {1, 1, 1, 1};
    sparsity_refs_note(&refs, shape("1024"), &slow);
    sparsity_refs_note(&refs, shape("1024"), &fast);
    sparsity_refs_note(&refs, shape("2048"), &other);
    const sparsity_run causal = {1, 0, 8, 0.5};
    schema_num eff = sparsity_refs_eff(&refs, shape("1024"), &causal);
    cr_assert_eq(eff.state, SCHEMA_NUM_VALUE);
    cr_assert_float_eq(eff.value, 10 * 0.5 / 8, 1e-9);
    const sparsity_run full = {1, 1, 80, 1};
    cr_assert_eq(sparsity_refs_eff(&refs, shape("1024"), &full).state, SCHEMA_NUM_NONE,
                 "full-mask runs carry no efficiency");
    sparsity_refs_free(&refs);
}

Test(sparsity, missing_reference_is_na_not_zero)
{
    sparsity_refs refs;
    sparsity_refs_init(&refs);
    const sparsity_run masked = {1, 0, 8, 0.5};
    schema_num eff = sparsity_refs_eff(&refs, shape("4096"), &masked);
    cr_assert_eq(eff.state, SCHEMA_NUM_NA);
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set_schema_num(&r, ATTN_COL_SPARSITY_EFF, "%.4g", &eff);
    cr_assert(strncmp(r.cell[ATTN_COL_SPARSITY_EFF], "NA:", 3) == 0, "%s", r.cell[ATTN_COL_SPARSITY_EFF]);
    const sparsity_run failed = {0, 1, 8, 1};
    sparsity_refs_note(&refs, shape("4096"), &failed);
    cr_assert_eq(refs.n, 0, "an errored run is no reference");
    sparsity_refs_free(&refs);
}
