/* Sparsity efficiency: masked rows are judged against the fastest full-mask
 * run at the same shape, and say NA when there is none. */
#include "harness/results/csvw.h"
#include "harness/results/sparsity.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static csvw_row make(const char *kernel, const char *mask, const char *N, const char *ms, const char *density)
{
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
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%s", ms);
    csvw_row_set(&r, ATTN_COL_DENSITY, "%s", density);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    return r;
}

Test(sparsity, efficiency_uses_the_fastest_dense_kernel_at_the_same_shape)
{
    sparsity_refs refs;
    sparsity_refs_init(&refs);
    csvw_row slow = make("blas", "full", "1024", "40", "1"), fast = make("flash", "full", "1024", "10", "1");
    csvw_row other = make("flash", "full", "2048", "1", "1");
    sparsity_refs_note(&refs, &slow);
    sparsity_refs_note(&refs, &fast);
    sparsity_refs_note(&refs, &other);
    csvw_row causal = make("flash", "causal", "1024", "8", "0.5");
    sparsity_refs_fill(&refs, &causal);
    cr_assert_float_eq(strtod(causal.cell[ATTN_COL_SPARSITY_EFF], NULL), 10 * 0.5 / 8, 1e-9);
    csvw_row full = make("naive", "full", "1024", "80", "1");
    sparsity_refs_fill(&refs, &full);
    cr_assert_str_eq(full.cell[ATTN_COL_SPARSITY_EFF], "", "full-mask rows carry no efficiency");
    sparsity_refs_free(&refs);
}

Test(sparsity, missing_reference_is_na_not_zero)
{
    sparsity_refs refs;
    sparsity_refs_init(&refs);
    csvw_row masked = make("flash", "causal", "4096", "8", "0.5");
    sparsity_refs_fill(&refs, &masked);
    cr_assert(strncmp(masked.cell[ATTN_COL_SPARSITY_EFF], "NA:", 3) == 0);
    csvw_row failed = make("flash", "full", "4096", "8", "1");
    csvw_row_set(&failed, ATTN_COL_STATUS, "error:boom");
    sparsity_refs_note(&refs, &failed);
    cr_assert_eq(refs.n, 0, "an errored row is no reference");
    sparsity_refs_free(&refs);
}
