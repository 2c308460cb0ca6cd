/* Right-padded batches (attn_args.seq_len): every kernel flagged ATTN_PADDED
 * on padded self-attention matches its reference (the oracle, or its own
 * double form) forward and backward on the masks it claims;
 * each sequence equals the same kernel run on it alone (with what the kernel
 * pins for it from the batch, and the batch's learned weights); padding rows are
 * never read (NaN there changes nothing) and get O = 0, LSE = -inf and zero
 * gradients; the model's attention block passes its gradient check on a
 * padded batch; validation of the lengths. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/flash/flash.h"
#include "kernels/softmax/softmax.h"
#include "kernels/core/registry.h"
#include "kernels/linear/linear.h"
#include "kernels/sigmoid/sigmoid.h"
#include "model_check.h"
#include "sanitize.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lengths of a batch of 4 at N: whole, cut mid-tile, one row, empty. */
static void lens_for(int64_t N, int64_t lens[4])
{
    lens[0] = N, lens[1] = N * 3 / 5, lens[2] = 1, lens[3] = 0;
}

/* Every kernel flagged PADDED (the oracle is the reference) runs forward on
 * the mask cases of `attnbench check` it claims, and forward with each
 * parameter that changes its tiling of a padded batch and backward on these
 * core masks (ragged documents, one of length 1, and a denser random mask). */
static const char *const core_masks[] = {"full", "causal", "window:wl=5,wr=3", "document:lens=30+1+69",
                                         "document:lens=30+1+69,causal=1", "random:p=0.3,seed=4"};
#define N_CORE_MASKS (sizeof core_masks / sizeof *core_masks)

static const struct {
    const char *kernel;
    const char *params[2];
} padded_params[] = {{"flash", {"br=16", "bc=32"}},
                   {"linear", {"chunk=4", NULL}},
                   {"sigmoid", {"bias=row", "br=16"}},
                   {"nystrom", {"landmarks=7 tile=5 conv=3", "landmarks=200"}},
                   {"lowrank_mha", {"m=3 r=5", NULL}}}; /* the defaults' 1536 weights a head: minutes of differences */

static const char *param_variant(const attn_kernel *k, int i)
{
    for (size_t c = 0; c < sizeof padded_params / sizeof *padded_params; c++)
        if (!strcmp(padded_params[c].kernel, k->name))
            return padded_params[c].params[i];
    return NULL;
}

static int is_padded_kernel(const attn_kernel *k) { return (k->flags & ATTN_PADDED) && !(k->flags & ATTN_REFERENCE); }

static const char *const full_causal[] = {"full", "causal"};

/* KV heads of the batch of 4 query heads: 2 (grouped) where the kernel takes GQA. */
static int64_t kv_heads(const attn_kernel *k) { return k->flags & ATTN_GQA ? 2 : 4; }

/* The kernel takes `mask` on the batch of 4 at N = 100 (FULL-only kernels have no causal case). */
static int claims(const attn_kernel *k, const char *mask)
{
    attn_args a = fx_args(4, 4, kv_heads(k), 100, 100, 16, mask, 2);
    return attn_args_validate(k, &a) == 0;
}

/* Sequence b of the padded batch `a` as a problem of its own: its length,
 * with what the kernel pins for it from the batch (ref_prefix_args: sigmoid's
 * bias, the length Linformer's projections cover). */
static attn_args sequence_alone(const attn_kernel *k, const attn_args *a, int64_t b, const char *mask)
{
    attn_args one = fx_args(1, a->H, a->H_kv, a->seq_len[b], a->seq_len[b], a->D, mask, 1);
    if (k->ref_prefix_args)
        k->ref_prefix_args(a, b, &one);
    return one;
}

/* Mask m of the shared cases followed by core_masks (NULL past the end). */
static const char *padded_mask(size_t m)
{
    size_t n = check_mask_case_count();
    return m < n ? check_mask_cases[m] : m < n + N_CORE_MASKS ? core_masks[m - n] : NULL;
}

Test(padded, forward_matches_the_reference_on_every_claimed_mask, .timeout = 60)
{
    int64_t lens[4];
    lens_for(100, lens);
    int kernels = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_padded_kernel(*k))
            continue;
        kernels++;
        for (size_t m = 0; padded_mask(m); m++)
            for (int ip = -1; ip < 2; ip++) {
                const char *param = ip < 0 ? NULL : param_variant(*k, ip);
                if (ip >= 0 && (!param || m < check_mask_case_count()))
                    continue; /* parameter variants on the core masks only */
                attn_args a = fx_args(4, 4, 2, 100, 100, 16, padded_mask(m), 2);
                a.seq_len = lens;
                fx_add_params(&a, param);
                if (attn_args_validate(*k, &a))
                    continue; /* a mask the kernel does not claim */
                fx_problem p;
                fx_make_for(&p, *k, &a, 30 + (uint64_t)(m * 3 + ip));
                memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: every row written */
                cr_assert_eq(fx_run(*k, &p, 0), 0, "%s %s: %s", (*k)->name, padded_mask(m), attn_last_error());
                double e = fx_err_o(&p), tol = check_tol_o(*k, 100);
                cr_assert(e <= tol, "%s %s %s: err_O %.3g > %.3g", (*k)->name, padded_mask(m), param ? param : "", e, tol);
                if (!(*k)->ref_forward)
                    cr_assert(fx_err_lse(&p) <= CHECK_TOL_LSE, "%s %s: err_lse", (*k)->name, padded_mask(m));
                fx_free(&p);
            }
    }
    cr_assert_geq(kernels, 1, "no kernel is flagged padded");
}

Test(padded, backward_matches_the_reference_gradients, .timeout = SAN_TIMEOUT(240))
{
    /* central differences for the own references: keep the problem small and
     * the masks few */
    int64_t lens[4];
    lens_for(20, lens);
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_padded_kernel(*k) || !(*k)->backward)
            continue;
        for (size_t m = 0; m < N_CORE_MASKS; m++) {
            const char *spec = core_masks[m];
            char mask[64];
            snprintf(mask, sizeof mask, "%s", spec);
            if (!strncmp(mask, "document:lens", 13)) /* documents of the 20-row problem */
                snprintf(mask, sizeof mask, "document:lens=6+1+13%s", strstr(spec, "causal") ? ",causal=1" : "");
            attn_args a = fx_args(4, 2, 1, 20, 20, 8, mask, 2);
            a.seq_len = lens;
            fx_add_params(&a, param_variant(*k, 0));
            if (attn_args_validate(*k, &a))
                continue;
            double e[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_backward(*k, &a, 50 + (uint64_t)m, e), 0, "%s %s: %s", (*k)->name, mask,
                         attn_last_error());
            cr_assert(e[0] <= CHECK_TOL_GRAD && e[1] <= CHECK_TOL_GRAD && e[2] <= CHECK_TOL_GRAD,
                      "%s %s: gradient errors %.3g %.3g %.3g", (*k)->name, mask, e[0], e[1], e[2]);
        }
    }
}

/* Row n of (b, h) of t holds only x (fp32 view of the whole tensor). */
static void fill_rows(const attn_tensor *t, int64_t b, int64_t n0, float x)
{
    for (int64_t h = 0; h < t->H; h++)
        for (int64_t n = n0; n < t->N; n++)
            for (int64_t d = 0; d < t->D; d++)
                attn_at(t, b, h, n)[d] = x;
}

static int rows_equal(const attn_tensor *x, const attn_tensor *y, int64_t b, int64_t n1)
{
    for (int64_t h = 0; h < x->H; h++)
        if (memcmp(attn_at(x, b, h, 0), attn_at(y, b, h, 0), sizeof(float) * (size_t)(n1 * x->D)))
            return 0;
    return 1;
}

static int rows_zero(const attn_tensor *t, int64_t b, int64_t n0)
{
    for (int64_t h = 0; h < t->H; h++)
        for (int64_t n = n0; n < t->N; n++)
            for (int64_t d = 0; d < t->D; d++)
                if (attn_at(t, b, h, n)[d] != 0.0f)
                    return 0;
    return 1;
}

static attn_tensor copy_of(const attn_tensor *t)
{
    attn_tensor c = *t;
    c.data = malloc(sizeof(float) * (size_t)(t->B * t->sb));
    memcpy(c.data, t->data, sizeof(float) * (size_t)(t->B * t->sb));
    return c;
}

/* Forward and backward of k on the batch of 4 at N = 100 with lengths lens. */
static void run_padded(const attn_kernel *k, const char *mask, const int64_t lens[4], uint64_t seed, fx_problem *p)
{
    attn_args a = fx_args(4, 4, kv_heads(k), 100, 100, 16, mask, 2);
    a.seq_len = lens;
    fx_make_for(p, k, &a, seed);
    cr_assert_eq(fx_run(k, p, 1), 0, "%s %s: %s", k->name, mask, attn_last_error());
}

Test(padded, padding_rows_are_never_read_and_get_zero_output_and_gradients, .timeout = 60)
{
    int64_t lens[4];
    lens_for(100, lens);
    for (const attn_kernel *const *k = attn_registry(); *k; k++)
        for (int m = 0; m < 2 && is_padded_kernel(*k); m++) {
            if (!claims(*k, full_causal[m]))
                continue;
            fx_problem p;
            run_padded(*k, full_causal[m], lens, 70 + (uint64_t)m, &p);
            attn_tensor o = copy_of(&p.o), dq = copy_of(&p.dq), dk = copy_of(&p.dk), dv = copy_of(&p.dv);
            for (int64_t b = 0; b < 4; b++) { /* NaN in every padding row of every input */
                const attn_tensor *in[] = {&p.q, &p.k, &p.v, &p.d_o};
                for (int i = 0; i < 4; i++)
                    fill_rows(in[i], b, lens[b], NAN);
            }
            cr_assert_eq(fx_run(*k, &p, 1), 0, "%s", attn_last_error());
            for (int64_t b = 0; b < 4; b++) {
                const char *name = (*k)->name, *mask = full_causal[m];
                cr_assert(rows_equal(&p.o, &o, b, lens[b]) && rows_equal(&p.dq, &dq, b, lens[b]) &&
                              rows_equal(&p.dk, &dk, b, lens[b]) && rows_equal(&p.dv, &dv, b, lens[b]),
                          "%s %s b=%ld: a real row changed with NaN in the padding", name, mask, (long)b);
                cr_assert(rows_zero(&p.o, b, lens[b]) && rows_zero(&p.dq, b, lens[b]) && rows_zero(&p.dk, b, lens[b]) &&
                              rows_zero(&p.dv, b, lens[b]),
                          "%s %s b=%ld: a padding row of O, dQ, dK or dV is not 0", name, mask, (long)b);
                for (int64_t h = 0; ((*k)->flags & ATTN_EXACT) && h < 4; h++)
                    for (int64_t i = lens[b]; i < 100; i++)
                        cr_assert(isinf(p.lse[(b * 4 + h) * 100 + i]) && p.lse[(b * 4 + h) * 100 + i] < 0,
                                  "%s b=%ld row %ld: lse %g", name, (long)b, (long)i, p.lse[(b * 4 + h) * 100 + i]);
            }
            free(o.data), free(dq.data), free(dk.data), free(dv.data);
            fx_free(&p);
        }
}

/* The padded batch and each sequence run alone (B = 1, N = its length)
 * give the same rows: padding changes nothing but the work. */
Test(padded, each_sequence_equals_its_run_alone, .timeout = 60)
{
    int64_t lens[4];
    lens_for(100, lens);
    for (const attn_kernel *const *k = attn_registry(); *k; k++)
        for (int m = 0; m < 2 && is_padded_kernel(*k); m++) {
            if (!claims(*k, full_causal[m]))
                continue;
            fx_problem p;
            run_padded(*k, full_causal[m], lens, 90 + (uint64_t)m, &p);
            for (int64_t b = 0; b < 3; b++) { /* the empty sequence has no run of its own */
                attn_args one = sequence_alone(*k, &p.a, b, full_causal[m]);
                fx_problem s;
                fx_make_for(&s, *k, &one, 1);
                /* and the same per-token inputs (ponet's projections in io.router) */
                const attn_tensor *from[] = {&p.q, &p.k, &p.v, &p.d_o, &p.beta, &p.gate, &p.router},
                                  *to[] = {&s.q, &s.k, &s.v, &s.d_o, &s.beta, &s.gate, &s.router};
                for (int t = 0; t < 7; t++)
                    for (int64_t h = 0; to[t]->data && h < to[t]->H; h++)
                        memcpy(attn_at(to[t], 0, h, 0), attn_at(from[t], b, h, 0),
                               sizeof(float) * (size_t)(lens[b] * to[t]->D));
                /* the same learned weights (io.w; a kernel may size them by the longest
                 * sequence, as a synthesizer's L x L logits, and read them at any shorter N) */
                attn_tensor w_own = s.w, dw_own = s.dw;
                s.w = p.w, s.dw = p.dw;
                cr_assert_eq(fx_run(*k, &s, 1), 0, "%s", attn_last_error());
                s.w = w_own, s.dw = dw_own;
                const attn_tensor *x[] = {&s.o, &s.dq, &s.dk, &s.dv}, *y[] = {&p.o, &p.dq, &p.dk, &p.dv};
                for (int t = 0; t < 4; t++) {
                    double err = 0, mx = 0;
                    for (int64_t h = 0; h < x[t]->H; h++)
                        for (int64_t n = 0; n < lens[b]; n++)
                            for (int64_t d = 0; d < x[t]->D; d++) {
                                double u = attn_at(x[t], 0, h, n)[d], v = attn_at(y[t], b, h, n)[d];
                                err = fmax(err, fabs(u - v)), mx = fmax(mx, fabs(u));
                            }
                    cr_assert(err <= 1e-5 * fmax(mx, 1e-3), "%s %s b=%ld tensor %d: |alone - padded| %.3g (max %.3g)",
                              (*k)->name, full_causal[m], (long)b, t, err, mx);
                }
                fx_free(&s);
            }
            fx_free(&p);
        }
}

Test(padded, attention_block_gradients_on_a_padded_batch)
{
    static const int64_t lens[3] = {9, 4, 1};
    uint64_t seed = 11;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_padded_kernel(*k) || !(*k)->backward)
            continue;
        nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 2, .kernel = *k, .max_len = 9};
        char what[64];
        snprintf(what, sizeof what, "%s block, lengths 9 4 1 of 9", (*k)->name);
        mc_check_block_padded(&cfg, 3, 9, lens, 2, seed++, what);
    }
}

Test(padded, lengths_are_validated_and_kernels_without_padded_refuse_them)
{
    int64_t ok[2] = {5, 3}, bad[2] = {5, 11};
    attn_args a = fx_args(2, 2, 2, 10, 10, 8, "full", 1);
    a.seq_len = ok;
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &a), 0, "%s", attn_last_error());
    cr_assert_eq(attn_args_validate(&attn_kernel_naive, &a), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "PADDED"), "%s", attn_last_error());
    a.seq_len = bad;
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &a), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "seq_len[1]"), "%s", attn_last_error());
    a.seq_len = ok, a.kv_len = ok;
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &a), ATTN_EINVAL);
    attn_args x = fx_args(2, 2, 2, 4, 10, 8, "full", 1);
    x.seq_len = ok;
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &x), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "self-attention"), "%s", attn_last_error());
}

/* The cost model counts each sequence at its own length: a padded batch
 * costs what its sequences cost alone (FLOPs and minimum bytes). */
Test(padded, cost_model_counts_each_sequence_at_its_own_length)
{
    static int64_t lens[3] = {300, 77, 1};
    for (const attn_kernel *const *k = attn_registry(); *k; k++)
        for (int m = 0; m < 2 && is_padded_kernel(*k); m++) {
            if (!claims(*k, full_causal[m]))
                continue;
            attn_args a = fx_args(3, 4, 2, 300, 300, 32, full_causal[m], 1);
            a.seq_len = lens;
            for (int pass = 0; pass < 2; pass++) {
                double flops = 0, bytes = 0;
                for (int b = 0; b < 3; b++) {
                    attn_args one = sequence_alone(*k, &a, b, full_causal[m]);
                    flops += (*k)->flops(&one, (attn_pass)pass), bytes += (*k)->bytes(&one, (attn_pass)pass);
                }
                double f = (*k)->flops(&a, (attn_pass)pass), by = (*k)->bytes(&a, (attn_pass)pass);
                cr_assert(fabs(f - flops) <= 1e-9 * flops && fabs(by - bytes) <= 1e-9 * bytes,
                          "%s %s pass %d: padded %.6g FLOPs %.6g bytes, sequences alone %.6g, %.6g", (*k)->name,
                          full_causal[m], pass, f, by, flops, bytes);
            }
        }
}
