/* Properties of `routing` (Routing Transformer): the fp32 kernel equals its
 * double reference (shapes, masks, GQA, Dv != D, both assignments,
 * keep_diag off, duplicated centroids that tie exactly); one cluster is
 * softmax attention; argmax routing is softmax masked to the query's
 * cluster (built here from the centroids, without the kernel's code); the
 * error against softmax falls as the clusters grow (mean over seeds);
 * gradients against central differences for balanced and keep_diag=0;
 * balanced with a causal mask is refused; the centroid EMA (decay 0 gives
 * the normalised cluster means, decay 1 nothing, threads do not matter)
 * and dw = 0. Leakage, determinism, views: the registry-driven tests. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"
#include "kernels/routing/routing.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_routing;

static attn_args rt_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params, int threads)
{
    attn_args a = fx_args(B, H, H_kv, N, N, D, mask, threads);
    fx_add_params(&a, params);
    return a;
}

/* ---- the double reference ---- */

static const struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *mask, *params;
} ref_cases[] = {
    {2, 2, 2, 64, 16, 0, "full", "clusters=4"},
    {1, 2, 2, 100, 16, 0, "causal", "clusters=3"},            /* clusters of ~33 keys: several key tiles */
    {1, 4, 2, 130, 32, 0, "full", ""},                         /* GQA, kappa = 11 */
    {2, 2, 1, 70, 16, 24, "causal", "clusters=5"},             /* Dv != D */
    {1, 2, 2, 300, 16, 0, "full", "clusters=2"},               /* 150-row clusters: query and key tiles */
    {1, 2, 2, 300, 16, 0, "causal", "clusters=2 keep_diag=0"}, /* rows without keys */
    {1, 2, 2, 96, 16, 0, "full", "assign=balanced clusters=5"},
    {1, 4, 2, 200, 32, 40, "full", "assign=balanced"},         /* kappa 14, w 15 */
    {1, 2, 2, 150, 16, 0, "full", "assign=balanced clusters=2 keep_diag=0"},
    {2, 2, 2, 1, 16, 0, "full", ""},
    {1, 2, 2, 513, 64, 0, "causal", ""},
};

Test(routing, forward_matches_double_reference_on_shapes_parameters_and_masks, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        attn_args a = rt_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].N, ref_cases[i].D,
                              ref_cases[i].mask, ref_cases[i].params, 2);
        a.Dv = ref_cases[i].Dv;
        char what[160];
        snprintf(what, sizeof what, "case %zu (%s, N=%lld, %s)", i, ref_cases[i].mask, (long long)ref_cases[i].N,
                 ref_cases[i].params);
        own_ref_check(K, &a, 11 + i, what);
    }
}
