/* Properties every registered kernel must have, each written once and looped
 * over attn_registry() by the kernel's flags and the masks it claims (the
 * shared mask cases of `attnbench check`, check_mask_cases): strided views,
 * GQA against the reference, causal leakage, fully masked rows and thread
 * determinism (DET kernels); then leakage, determinism and views again on
 * the code paths kernel parameters select. Padded batches (PADDED kernels)
 * are in test_padded.c. A new kernel is covered by registering it. Shapes
 * are small: the loops run over ~20 kernels and ~19 masks. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Args of kernel k for a shape and mask, with its small-size parameters
 * (check_params) and `params` ("k=v k=v" or NULL). A one-query kernel gets
 * Nq = 1. Returns 0 when the kernel takes the problem. */
static int kernel_args(const attn_kernel *k, int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D,
                       const char *mask, const char *params, int threads, attn_args *a)
{
    memset(a, 0, sizeof *a);
    a->B = B, a->H = H, a->H_kv = H_kv, a->Nk = Nk, a->D = D, a->threads = threads;
    a->Nq = k->flags & ATTN_ONE_QUERY ? 1 : Nq;
    if (attn_mask_parse(mask, &a->mask))
        return -1;
    attn_args_defaults(a);
    if (k->check_params && param_bag_add_list(&a->params, k->check_params))
        return -1;
    if (params && param_bag_add_list(&a->params, params))
        return -1;
    return attn_args_validate(k, a);
}

/* ---- strided views ---- */

/* The kernel on [B, N, H, D] storage with padded rows and an unaligned base
 * (PROBLEM_STRIDED) gives the bits it gives on contiguous tensors of the same
 * values: O, lse and every gradient. */
static void assert_views_match(const attn_kernel *k, const attn_args *a, const char *what)
{
    problem c, s;
    unsigned opts = k->backward ? PROBLEM_GRADS : 0;
    cr_assert_eq(problem_make(&c, k, a, 8, opts), 0, "%s", attn_last_error());
    cr_assert_eq(problem_make(&s, k, a, 8, opts | PROBLEM_STRIDED), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(k, &c, k->backward != NULL), 0, "%s %s: %s", k->name, what, attn_last_error());
    cr_assert_eq(fx_run(k, &s, k->backward != NULL), 0, "%s %s strided: %s", k->name, what, attn_last_error());
    const attn_tensor *x[] = {&c.o, &c.dq, &c.dk, &c.dv, &c.dbeta, &c.dgate, &c.drouter, &c.dw};
    const attn_tensor *y[] = {&s.o, &s.dq, &s.dk, &s.dv, &s.dbeta, &s.dgate, &s.drouter, &s.dw};
    static const char *const names[] = {"O", "dQ", "dK", "dV", "dbeta", "dgate", "drouter", "dw"};
    for (int i = 0; i < 8; i++)
        cr_assert(!x[i]->data || problem_same_rows(x[i], y[i]), "%s %s: %s differs on [B,N,H,D] views", k->name, what,
                  names[i]);
    size_t nl = sizeof(float) * (size_t)(c.a.B * c.a.H * c.a.Nq);
    cr_assert_eq(memcmp(c.lse, s.lse, nl), 0, "%s %s: lse differs on [B,N,H,D] views", k->name, what);
    problem_free(&c);
    problem_free(&s);
}

Test(properties, strided_views_give_the_bits_of_contiguous_tensors_for_every_kernel_and_claimed_mask, .timeout = 120)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        int ran = 0;
        int64_t H_kv = (*k)->flags & ATTN_GQA ? 2 : 4, Nq = (*k)->flags & ATTN_CROSS ? 33 : 40;
        for (const char *const *m = check_mask_cases; *m; m++) {
            attn_args a;
            if (kernel_args(*k, 2, 4, H_kv, Nq, 40, 20, *m, NULL, 2, &a))
                continue;
            a.Dv = (*k)->flags & ATTN_DV ? 12 : 0;
            assert_views_match(*k, &a, *m);
            ran++;
        }
        cr_assert_gt(ran, 0, "%s: no mask case fits the view shape", (*k)->name);
    }
}

/* Parameters that select other code paths (tile sizes, modes, chunking), at
 * the shapes the kernels' own tests used for them. */
static const struct {
    const char *kernel;
    int64_t B, H, H_kv, Nq, Nk, D, Dv;
    const char *mask, *params;
} view_variants[] = {
    {"flash", 2, 4, 2, 70, 90, 20, 0, "window:wl=30,wr=10", "bc=32"},
    {"sigmoid", 2, 4, 2, 70, 90, 20, 0, "window:wl=30,wr=10", "bc=32"},
    {"aaren", 2, 4, 2, 1, 70, 20, 12, "document:n=3,seed=2", "chunk=16"},
    {"gam", 2, 2, 1, 30, 30, 8, 0, "full", "slots=8 tile=7"},
    {"tcnca", 2, 2, 2, 30, 30, 8, 12, "causal", "chunk=7 layers=3"},
    {"infini", 2, 2, 1, 30, 30, 8, 0, "causal", "L=8"},
    {"landmark", 2, 4, 2, 70, 70, 20, 0, "causal", "l=8"},
    {"landmark", 2, 4, 2, 70, 70, 20, 0, "causal", "l=8 mode=topk k=2"},
    {"local_linear", 2, 4, 2, 40, 50, 12, 0, "window:wl=15,wr=4", "bc=16"},
    {"streaming", 2, 4, 2, 60, 60, 20, 0, "sink:n=4,w=16", "mode=decode"},
    {"streaming", 2, 4, 2, 60, 60, 20, 0, "sink:n=4,w=16", "mode=prefill"},
    {"deltanet", 2, 4, 2, 37, 37, 16, 24, "causal", "chunk=16"},
    {"gated_deltanet", 2, 4, 2, 37, 37, 16, 24, "causal", "chunk=16"},
    {"titans", 2, 4, 2, 37, 37, 16, 24, "causal", "chunk=16"},
    {"titans", 2, 4, 2, 37, 37, 16, 24, "document:lens=17+20,causal=1", "chunk=1 read=before"},
    {"titans", 2, 4, 2, 37, 37, 16, 24, "causal", "memory=mlp chunk=16"},
    {"atlas", 2, 4, 2, 37, 37, 16, 24, "causal", "chunk=16 window=4"},
    {"atlas", 2, 4, 2, 37, 37, 16, 24, "document:lens=17+20,causal=1", "chunk=1 window=3 phi=identity"},
    {"linear", 2, 4, 2, 40, 40, 8, 12, "causal", "chunk=16"},
    {"based", 2, 4, 2, 40, 40, 8, 12, "causal", "window=5"},
    {"nystrom", 2, 4, 2, 70, 70, 20, 12, "full", "landmarks=9 conv=5 tile=16"},
    {"gla", 1, 2, 2, 70, 70, 16, 16, "causal", "chunk=16"},
    {"reformer", 2, 4, 2, 70, 70, 20, 12, "causal", "chunk=8 rounds=2 same_bucket=0"},
    {"hyper", 2, 4, 2, 70, 70, 20, 0, "causal", "bs=8 s=4 min_seq_len=8"},
    {"hyper", 2, 4, 2, 70, 70, 20, 0, "full", "bs=16 s=8 min_seq_len=8 r=3"},
    {"retrieval", 2, 4, 2, 70, 70, 20, 0, "causal", "n_sink=2 w=8 r=4 min_index=8"},
    {"retrieval", 2, 4, 2, 4, 300, 20, 0, "full", "n_sink=2 w=8 r=4 min_index=8 exact=1"},
    {"hip", 2, 4, 2, 70, 70, 20, 0, "causal", "k=4 bk=2 bq=8 refresh=5 sink=2 window=3"},
};

Test(properties, strided_views_give_the_bits_of_contiguous_tensors_on_parameter_variants, .timeout = 60)
{
    for (size_t i = 0; i < sizeof view_variants / sizeof *view_variants; i++) {
        const attn_kernel *k = attn_find_kernel(view_variants[i].kernel);
        cr_assert_not_null(k, "%s", attn_last_error());
        attn_args a = fx_args(view_variants[i].B, view_variants[i].H, view_variants[i].H_kv, view_variants[i].Nq,
                              view_variants[i].Nk, view_variants[i].D, view_variants[i].mask, 2);
        a.Dv = view_variants[i].Dv;
        fx_add_params(&a, view_variants[i].params);
        cr_assert_eq(attn_args_validate(k, &a), 0, "%s %s: %s", k->name, view_variants[i].params, attn_last_error());
        char what[128];
        snprintf(what, sizeof what, "%s %s", view_variants[i].mask, view_variants[i].params);
        assert_views_match(k, &a, what);
    }
}

/* ---- GQA ---- */

/* Groups of 4 query heads per KV head match the kernel's reference (the
 * oracle, or its own double form: some kernels' math depends on the KV head,
 * so a GQA problem is not the same as repeating KV heads): forward on every
 * claimed mask, gradients on the first one. */
Test(properties, gqa_matches_the_reference_for_every_gqa_kernel_on_every_claimed_mask, .timeout = 60)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!((*k)->flags & ATTN_GQA))
            continue;
        int ran = 0;
        for (const char *const *m = check_mask_cases; *m; m++) {
            attn_args a;
            if (kernel_args(*k, 1, 8, 2, 33, 33, 16, *m, NULL, 2, &a))
                continue;
            double eo, el, e[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_forward(*k, &a, 31, &eo, &el), 0, "%s %s: %s", (*k)->name, *m, attn_last_error());
            cr_assert(eo <= check_tol_o(*k, a.Nk), "%s %s GQA 8/2: err_O %.3g", (*k)->name, *m, eo);
            cr_assert((*k)->ref_forward || el <= CHECK_TOL_LSE, "%s %s GQA 8/2: err_lse %.3g", (*k)->name, *m, el);
            if (ran++ || !(*k)->backward || kernel_args(*k, 1, 4, 1, 9, 9, 8, *m, NULL, 2, &a))
                continue;
            cr_assert_eq(check_kernel_backward(*k, &a, 32, e), 0, "%s %s: %s", (*k)->name, *m, attn_last_error());
            for (int i = 0; i < ATTN_CHECK_GRADS; i++)
                cr_assert(e[i] <= CHECK_TOL_GRAD, "%s %s GQA 4/1: %s err %.3g", (*k)->name, *m, check_grad_names[i], e[i]);
        }
        cr_assert_gt(ran, 0, "%s: no mask case fits the GQA shape", (*k)->name);
    }
}

/* ---- causal leakage, fully masked rows, thread determinism ---- */

Test(properties, causal_outputs_ignore_future_rows_bitwise_for_every_causal_kernel, .timeout = 60)
{
    int ran = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        attn_args a;
        if (kernel_args(*k, 1, 2, 2, 97, 97, 32, "causal", NULL, 2, &a))
            continue; /* e.g. streaming: its sink mask only (its paths below) */
        int ok;
        cr_assert_eq(check_kernel_causal_leakage(*k, &a, 40, &ok), 0, "%s: %s", (*k)->name, attn_last_error());
        cr_assert(ok, "%s: rows < 40 changed when later rows did", (*k)->name);
        ran++;
    }
    cr_assert_gt(ran, 0, "no kernel takes a causal mask");
}

/* Kernels with a normaliser (no own reference): queries before every key. */
Test(properties, fully_masked_rows_give_zero_output_and_minus_inf_lse)
{
    attn_args causal = fx_args(1, 2, 2, 20, 20, 16, "causal", 2);
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if ((*k)->ref_forward || attn_args_validate(*k, &causal) != 0) /* e.g. streaming: its sink mask only */
            continue;
        int ok;
        cr_assert_eq(check_kernel_masked_rows(*k, 2, &ok), 0, "%s: %s", (*k)->name, attn_last_error());
        cr_assert(ok, "%s: fully masked rows are not O = 0, lse = -inf", (*k)->name);
    }
}

static void assert_thread_independent(const attn_kernel *k, const attn_args *a, int threads, const char *what)
{
    int ok;
    cr_assert_eq(check_kernel_thread_determinism(k, a, threads, &ok), 0, "%s %s: %s", k->name, what, attn_last_error());
    cr_assert(ok, "%s %s: outputs or gradients differ between 1 and %d threads", k->name, what, threads);
}

Test(properties, det_kernels_give_the_same_bits_at_any_thread_count_on_every_claimed_mask, .timeout = 120)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!((*k)->flags & ATTN_DETERMINISTIC))
            continue;
        for (const char *const *m = check_mask_cases; *m; m++) {
            attn_args a;
            if (kernel_args(*k, 2, 4, 2, 70, 70, 32, *m, NULL, 3, &a) == 0)
                assert_thread_independent(*k, &a, 3, *m);
        }
        /* the larger problem of `attnbench check`, full and causal */
        static const char *const big[] = {"full", "causal"};
        for (int m = 0; m < 2; m++) {
            attn_args a;
            if (kernel_args(*k, 2, 4, 2, 130, 130, 64, big[m], NULL, 2, &a) == 0)
                assert_thread_independent(*k, &a, 2, big[m]);
        }
    }
}

/* ---- learned weights ---- */

/* A kernel reading learned weights (ATTN_IN_WEIGHTS) refuses a forward whose
 * io.w is missing, naming it, rather than reading a NULL tensor (with its
 * check_params: parameters that need no weights, W = 0, read none). */
Test(properties, kernels_reading_learned_weights_refuse_a_forward_without_them)
{
    int ran = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!((*k)->inputs & ATTN_IN_WEIGHTS))
            continue;
        attn_args a;
        const char *mask = (*k)->flags & ATTN_CAUSAL ? "causal" : "full"; /* one the kernel takes */
        cr_assert_eq(kernel_args(*k, 1, 1, 1, 8, 8, 16, mask, NULL, 1, &a), 0, "%s: %s", (*k)->name,
                     attn_last_error());
        if (attn_weight_cols(*k, &a) == 0)
            continue;
        problem p;
        cr_assert_eq(problem_make(&p, *k, &a, 2, 0), 0, "%s", attn_last_error());
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(*k, &p.a, &ctx), 0, "%s: %s", (*k)->name, attn_last_error());
        attn_io io = problem_io(&p);
        memset(&io.w, 0, sizeof io.w);
        cr_assert_eq((*k)->forward(&ctx, &io), ATTN_EINVAL, "%s: a forward without io.w ran", (*k)->name);
        cr_assert(strstr(attn_last_error(), "io.w") != NULL, "%s: %s", (*k)->name, attn_last_error());
        attn_ctx_destroy(&ctx);
        problem_free(&p);
        ran++;
    }
    cr_assert_gt(ran, 0, "no kernel reads learned weights");
}

/* ---- the same properties on the code paths kernel parameters select ----
 * (chunk and tile sizes, modes, segment lengths, router settings), at the
 * shapes where those paths have their edges (rows t mid-chunk or at a
 * segment start, more threads than chunks). */
typedef struct {
    const char *kernel;
    int64_t B, H, H_kv, Nq, Nk, D, Dv;
    int threads;
    const char *masks[3];  /* NULL-terminated when shorter */
    const char *params[4]; /* alternatives, NULL-terminated when shorter */
    int64_t at[2];         /* leakage: first perturbed rows; determinism: thread counts compared with 1 (0: none) */
} path_case;

static const path_case leak_paths[] = {
    {"aaren", 1, 2, 2, 1, 97, 32, 0, 2, {"causal"}, {"chunk=256", "chunk=16", "chunk=1"}, {40}},
    {"based", 1, 2, 1, 130, 130, 8, 0, 2, {"causal"}, {"chunk=1", "chunk=16", "window=8"}, {57}},
    {"deltanet", 1, 4, 2, 40, 40, 16, 16, 1, {"causal"}, {"chunk=1", "chunk=16", "chunk=64"}, {21}},
    {"gated_deltanet", 1, 4, 2, 40, 40, 16, 16, 1, {"causal"}, {"chunk=1", "chunk=16", "chunk=64"}, {21}},
    {"titans", 1, 4, 2, 40, 40, 16, 16, 1, {"causal"}, {"chunk=1", "chunk=16", "chunk=64", "chunk=16 read=before"}, {21}},
    {"titans", 1, 4, 2, 40, 40, 16, 16, 1, {"causal"},
     {"memory=mlp chunk=1", "memory=mlp chunk=16", "memory=mlp chunk=16 read=before expand=1"}, {21}},
    {"atlas", 1, 4, 2, 40, 40, 16, 16, 1, {"causal"}, {"chunk=1 window=4", "chunk=16 window=4", "chunk=16 window=20 phi=identity"}, {21}},
    {"gam", 2, 2, 1, 97, 97, 16, 0, 2, {"causal"}, {"slots=32 tile=16"}, {40}},
    {"tcnca", 2, 2, 2, 97, 97, 16, 8, 2, {"causal"}, {"chunk=16 layers=3", "chunk=7 taps=2 base=3 layers=4"}, {40, 48}},
    {"infini", 2, 2, 1, 97, 97, 16, 0, 2, {"causal"}, {"L=16 update=delta", "L=16 update=linear tile=5", "L=7"}, {40, 48}},
    {"landmark", 1, 2, 1, 97, 97, 32, 0, 2, {"causal"}, {"l=8", "l=8 mode=topk k=2"}, {40, 43}},
    {"linear", 1, 2, 1, 130, 130, 16, 0, 2, {"causal", "document:lens=40+90,causal=1"}, {"chunk=1", "chunk=16", "chunk=64"}, {57}},
    {"local_linear", 1, 2, 1, 97, 97, 16, 0, 2, {"causal"}, {"bc=16"}, {40}},
    {"sigmoid", 1, 2, 2, 97, 97, 32, 0, 2, {"causal", "sink:n=4,w=16", "document:n=3,seed=5,causal=1"}, {"bc=32"}, {40}},
    {"sse", 1, 2, 2, 97, 97, 16, 16, 1, {"causal"},
     {"partitions=4 topk=1 chunk=16", "partitions=4 topk=1 chunk=64", "partitions=4 topk=2 chunk=16", "partitions=4 topk=2 chunk=64"}, {40}},
    {"sse", 1, 2, 2, 97, 97, 32, 32, 1, {"causal"},
     {"partitions=4 topk=1 chunk=16", "partitions=4 topk=1 chunk=64", "partitions=4 topk=2 chunk=16", "partitions=4 topk=2 chunk=64"}, {40}},
    {"streaming", 1, 2, 1, 97, 97, 16, 0, 2, {"sink:n=4,w=16"}, {"mode=decode", "mode=prefill"}, {40}},
    {"retnet", 1, 2, 2, 97, 97, 32, 32, 1, {"causal"}, {"chunk=16", "chunk=64"}, {40}},
    {"gla", 1, 2, 2, 97, 97, 32, 32, 1, {"causal"}, {"chunk=16", "chunk=64"}, {40}},
    {"lightning", 1, 2, 2, 97, 97, 32, 32, 1, {"causal"}, {"chunk=16", "chunk=64"}, {40}},
    {"reformer", 1, 4, 2, 97, 97, 16, 0, 2, {"causal"}, {"chunk=8", "chunk=16 same_bucket=0", "chunk=128 buckets=1"}, {40, 7}},
    {"probsparse", 1, 4, 2, 97, 97, 16, 0, 2, {"causal"}, {"factor=1000", "lazy=sum", "causal_samples=all divisor=keys"}, {40, 7}},
    {"hyper", 1, 4, 2, 97, 97, 16, 0, 2, {"causal"}, {"bs=8 s=8 min_seq_len=8", "bs=16 s=4 min_seq_len=16 r=3"}, {40, 49}},
    {"retrieval", 1, 4, 2, 97, 97, 16, 0, 2, {"causal"},
     {"n_sink=2 w=8 r=4 min_index=8", "n_sink=2 w=8 r=4 min_index=8 exact=1", "n_sink=0 w=1 r=3 min_index=4 nlist=3"}, {40, 61}},
    {"hip", 1, 4, 2, 97, 97, 16, 0, 2, {"causal"}, {"k=4 bk=2 bq=8 refresh=6", "k=3 bk=4 bq=16 refresh=1 sink=2 window=5"}, {40, 43}},
};

static const path_case det_paths[] = {
    {"aaren", 2, 4, 2, 1, 300, 32, 0, 1, {"document:n=3,seed=5"}, {"chunk=16"}, {2, 3}},
    {"deltanet", 2, 4, 2, 70, 70, 16, 8, 1, {"document:lens=30+40,causal=1"}, {"chunk=16"}, {2, 3}},
    {"gated_deltanet", 2, 4, 2, 70, 70, 16, 8, 1, {"document:lens=30+40,causal=1"}, {"chunk=16"}, {2, 3}},
    {"titans", 2, 4, 2, 70, 70, 16, 8, 1, {"document:lens=30+40,causal=1"}, {"chunk=16", "chunk=1 read=before"}, {2, 3}},
    {"titans", 2, 4, 2, 70, 70, 16, 8, 1, {"document:lens=30+40,causal=1"}, {"memory=mlp chunk=16"}, {2, 3}},
    {"atlas", 2, 4, 2, 70, 70, 16, 8, 1, {"document:lens=30+40,causal=1"}, {"chunk=16 window=4", "chunk=1 window=3"}, {2, 3}},
    {"gam", 2, 2, 1, 130, 130, 16, 0, 1, {"causal"}, {"slots=32 tile=16 chunks=5"}, {2, 3}},
    {"gam", 2, 3, 3, 61, 61, 8, 0, 1, {"full"}, {"slots=16 tile=7 taps=4"}, {2, 3}},
    {"tcnca", 2, 3, 3, 130, 130, 16, 8, 1, {"full", "causal"}, {"chunk=16 layers=3", "chunk=9 taps=4 layers=2"}, {2, 3}},
    {"infini", 2, 4, 2, 130, 130, 16, 0, 1, {"causal"}, {"L=16 tile=5"}, {2, 3}},
    {"infini", 3, 2, 1, 61, 61, 8, 0, 1, {"causal"}, {"L=8 update=linear"}, {2, 3}},
    {"landmark", 2, 4, 2, 130, 130, 32, 0, 1, {"causal"}, {"l=8", "l=8 mode=topk k=2"}, {3}},
    {"linear", 2, 4, 2, 70, 70, 16, 0, 1, {"full", "causal", "document:lens=30+1+39"}, {"chunk=16"}, {2}},
    {"local_linear", 2, 4, 2, 70, 70, 16, 0, 1, {"causal"}, {""}, {3}},
    {"sigmoid", 2, 4, 2, 130, 130, 64, 0, 1, {"causal"}, {"bc=64"}, {2, 3}},
    {"sigmoid", 2, 4, 2, 130, 130, 64, 0, 1, {"random:p=0.2,seed=1"}, {"bc=64 bias=row"}, {2, 3}},
    {"sse", 2, 4, 2, 130, 130, 16, 24, 1, {"document:n=3,seed=5,causal=1"}, {"partitions=4 topk=2 chunk=16"}, {2}},
    {"streaming", 2, 4, 2, 130, 130, 32, 0, 1, {"sink:n=4,w=16"}, {"mode=decode", "mode=prefill"}, {3}},
    {"flash", 2, 4, 2, 150, 150, 48, 0, 1, {"full", "causal", "window:wl=16,wr=0"}, {"br=32 bc=64"}, {2, 3}},
    {"based", 2, 4, 2, 40, 40, 8, 0, 1, {"full", "causal"}, {"chunk=16"}, {2}},
    {"based", 2, 4, 2, 40, 40, 8, 0, 1, {"causal"}, {"window=6"}, {2}},
    {"retnet", 2, 4, 2, 130, 130, 32, 16, 1, {"causal"}, {""}, {2}},
    {"gla", 2, 4, 2, 130, 130, 32, 16, 1, {"causal"}, {""}, {2}},
    {"lightning", 2, 4, 2, 130, 130, 32, 16, 1, {"causal"}, {""}, {2}},
    {"reformer", 2, 4, 2, 130, 130, 16, 24, 1, {"full", "causal"}, {"chunk=8 rounds=3", "chunk=16 same_bucket=0"}, {2, 3}},
    {"nystrom", 3, 4, 2, 130, 130, 16, 24, 1, {"full"}, {"landmarks=13 tile=9", "landmarks=200 conv=4 tile=64"}, {2, 3}},
    {"probsparse", 2, 4, 2, 600, 600, 16, 24, 1, {"full", "causal"}, {"factor=10", "factor=2 lazy=sum"}, {2, 3}},
    {"hyper", 2, 4, 2, 130, 130, 16, 0, 1, {"full", "causal"}, {"bs=16 s=8 min_seq_len=8", "bs=8 s=32 min_seq_len=16 r=2"}, {2, 3}},
    {"retrieval", 2, 4, 2, 130, 130, 16, 0, 1, {"full", "causal"}, {"n_sink=2 w=8 r=4 min_index=8", "n_sink=2 w=8 r=4 min_index=8 exact=1"}, {2, 3}},
    {"hip", 2, 4, 2, 130, 130, 16, 0, 1, {"full", "causal"}, {"k=4 bk=2 bq=8 refresh=5", "k=8 bk=3 refresh=1 sink=2 window=4"}, {2, 3}},
};

typedef void (*path_check)(const attn_kernel *k, const attn_args *a, int64_t at, const char *what);

/* Runs `check` on every mask x parameter x `at` value of every case. */
static void for_each_path(const path_case *cases, size_t n, path_check check)
{
    for (size_t c = 0; c < n; c++) {
        const path_case *pc = &cases[c];
        const attn_kernel *k = attn_find_kernel(pc->kernel);
        cr_assert_not_null(k, "%s", attn_last_error());
        for (int m = 0; m < 3 && pc->masks[m]; m++)
            for (int ip = 0; ip < 4 && pc->params[ip]; ip++)
                for (int t = 0; t < 2 && pc->at[t]; t++) {
                    attn_args a = fx_args(pc->B, pc->H, pc->H_kv, pc->Nq, pc->Nk, pc->D, pc->masks[m], pc->threads);
                    a.Dv = pc->Dv;
                    cr_assert_eq(param_bag_add_list(&a.params, pc->params[ip]), 0, "%s", attn_last_error());
                    cr_assert_eq(attn_args_validate(k, &a), 0, "%s %s: %s", k->name, pc->params[ip], attn_last_error());
                    char what[160];
                    snprintf(what, sizeof what, "%s %s B%ld H%ld/%ld N%ld/%ld D%ld", pc->masks[m], pc->params[ip],
                             (long)pc->B, (long)pc->H, (long)pc->H_kv, (long)pc->Nq, (long)pc->Nk, (long)pc->D);
                    check(k, &a, pc->at[t], what);
                }
    }
}

static void assert_no_leak(const attn_kernel *k, const attn_args *a, int64_t t, const char *what)
{
    int ok;
    cr_assert_eq(check_kernel_causal_leakage(k, a, t, &ok), 0, "%s %s: %s", k->name, what, attn_last_error());
    cr_assert(ok, "%s %s: rows < %ld changed when rows >= %ld were perturbed", k->name, what, (long)t, (long)t);
}

static void assert_threads_path(const attn_kernel *k, const attn_args *a, int64_t threads, const char *what)
{
    assert_thread_independent(k, a, (int)threads, what);
}

Test(properties, causal_outputs_ignore_future_rows_on_parameter_paths, .timeout = 60)
{
    for_each_path(leak_paths, sizeof leak_paths / sizeof *leak_paths, assert_no_leak);
}

Test(properties, det_kernels_give_the_same_bits_at_any_thread_count_on_parameter_paths, .timeout = 120)
{
    for_each_path(det_paths, sizeof det_paths / sizeof *det_paths, assert_threads_path);
}
