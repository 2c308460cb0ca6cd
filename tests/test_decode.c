/* Properties of the split-KV decode kernels `decode` (split-K) and `lean`
 * (stream-K), docs/kernels/decode.md: oracle match on decode shapes with
 * GQA, partition sizes and worker counts, for the key-range masks and for
 * SINK_WINDOW, DOCUMENT and RANDOM; one partition equals `flash` (bitwise
 * in the lane and group layouts, to rounding in the dot layout), also at
 * 8-64 query rows per KV head and D up to 256; all-masked
 * partitions add nothing; ragged batches (attn_args.kv_len) equal
 * independent per-sequence oracles; StreamingLLM rolling decode equals the
 * sink-mask prefill row by row (StreamingLLM); thread-count determinism; the cost
 * model of a ragged batch; parameter validation. */
#include "harness/measure/fixture.h"
#include "kernels/decode/decode.h"
#include "kernels/flash/flash.h"
#include "kernels/core/oracle.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs kernel k with one extra parameter (or none) on p's inputs. */
static void run_with(const attn_kernel *k, fx_problem *p, const char *param, const char *what)
{
    attn_args saved = p->a;
    if (param)
        fx_add_params(&p->a, param);
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb)); /* NaN: rows must be written */
    int rc = fx_run(k, p, 0);
    p->a = saved;
    cr_assert_eq(rc, 0, "%s %s %s: %s", k->name, param ? param : "", what, attn_last_error());
}

static void assert_matches_oracle(const attn_kernel *k, fx_problem *p, const char *param, const char *what)
{
    run_with(k, p, param, what);
    double eo = fx_err_o(p), el = fx_err_lse(p);
    cr_assert(eo <= fx_tol_o(p->a.Nk), "%s %s %s: err_O %.3g > %.3g", k->name, param, what, eo,
              fx_tol_o(p->a.Nk));
    cr_assert(el <= 1e-5, "%s %s %s: err_lse %.3g", k->name, param, what, el);
}

static const char *const masks[] = {"full", "causal", "window:wl=300,wr=0"};

Test(decode, decode_and_lean_match_oracle_on_decode_shapes_gqa_and_split_sizes, .timeout = 60)
{
    static const int64_t Nqs[] = {1, 4}, Nks[] = {1, 1000, 4097};
    /* (H, H_kv, D): a 4:1 group at small D, and one KV head for four query heads */
    static const int64_t heads[][3] = {{32, 8, 16}, {4, 1, 64}};
    static const char *const params[][2] = {{"ls=64", "ls=1024"}, {"workers=1", "workers=3"}};
    const attn_kernel *ks[] = {&attn_kernel_decode, &attn_kernel_lean};
    for (int iq = 0; iq < 2; iq++)
        for (int ik = 0; ik < 3; ik++)
            for (int m = 0; m < 3; m++)
                for (int hh = 0; hh < 2; hh++) {
                    char what[160];
                    snprintf(what, sizeof what, "Nq=%ld Nk=%ld H=%ld H_kv=%ld D=%ld %s", (long)Nqs[iq],
                             (long)Nks[ik], (long)heads[hh][0], (long)heads[hh][1], (long)heads[hh][2],
                             masks[m]);
                    attn_args a = fx_args(1, heads[hh][0], heads[hh][1], Nqs[iq], Nks[ik], heads[hh][2],
                                          masks[m], 2);
                    fx_problem p;
                    fx_make(&p, &a, 100 + (uint64_t)(iq * 18 + ik * 6 + m * 2 + hh));
                    for (int kk = 0; kk < 2; kk++)
                        for (int v = 0; v < 2; v++)
                            assert_matches_oracle(ks[kk], &p, params[kk][v], what);
                    fx_free(&p);
                }
}

/* The masks whose rows are not one key range, or whose layout differs by
 * head and batch: SINK_WINDOW (sinks + window: two ranges), DOCUMENT (spans,
 * bottom-right causal per document), RANDOM (per (b, h) hash: classified head
 * by head inside a GQA group). Partial tiles take the element predicate. */
static const char *const more_masks[] = {"sink:n=4,w=64", "document:n=3,seed=2", "document:n=3,seed=2,causal=1",
                                         "random:p=0.1,seed=3"};
#define N_MORE_MASKS (int)(sizeof more_masks / sizeof *more_masks)

Test(decode, decode_and_lean_match_oracle_on_sink_document_and_random_masks, .timeout = 60)
{
    static const int64_t Nqs[] = {1, 4}, Nks[] = {1000, 4097};
    static const char *const params[][2] = {{"ls=64", "ls=1024"}, {"workers=1", "workers=3"}};
    const attn_kernel *ks[] = {&attn_kernel_decode, &attn_kernel_lean};
    for (int iq = 0; iq < 2; iq++)
        for (int ik = 0; ik < 2; ik++)
            for (int m = 0; m < N_MORE_MASKS; m++) {
                /* D = 80 takes the lane layout, D = 64 the group layout at Nq 4 (16 rows); B = 2 so
                 * RANDOM differs by batch */
                int64_t D = ik == 0 ? 80 : 64;
                char what[160];
                snprintf(what, sizeof what, "B=2 Nq=%ld Nk=%ld H=8 H_kv=2 D=%ld %s", (long)Nqs[iq], (long)Nks[ik],
                         (long)D, more_masks[m]);
                attn_args a = fx_args(2, 8, 2, Nqs[iq], Nks[ik], D, more_masks[m], 2);
                fx_problem p;
                fx_make(&p, &a, 600 + (uint64_t)(iq * 8 + ik * 4 + m));
                for (int kk = 0; kk < 2; kk++)
                    for (int v = 0; v < 2; v++)
                        assert_matches_oracle(ks[kk], &p, params[kk][v], what);
                fx_free(&p);
            }
}

/* Ragged batches shift each sequence's query positions (attn_q_off_of): the
 * sink window, the documents and the random pattern must be read at those
 * positions, as the oracle reads them. */
Test(decode, ragged_batch_matches_oracle_on_sink_document_and_random_masks, .timeout = 60)
{
    static const int64_t lens[] = {4097, 1, 1000, 0, 130};
    for (int m = 0; m < N_MORE_MASKS; m++)
        for (int64_t Nq = 1; Nq <= 4; Nq += 3) {
            attn_args a = fx_args(5, 8, 2, Nq, 4097, 32, more_masks[m], 2);
            a.kv_len = lens;
            fx_problem p;
            fx_make(&p, &a, 700 + (uint64_t)(m * 2) + (uint64_t)Nq);
            char what[96];
            snprintf(what, sizeof what, "ragged Nq=%ld %s", (long)Nq, more_masks[m]);
            assert_matches_oracle(&attn_kernel_decode, &p, "ls=64", what);
            assert_matches_oracle(&attn_kernel_decode, &p, "ls=1024", what);
            assert_matches_oracle(&attn_kernel_lean, &p, "workers=1", what);
            assert_matches_oracle(&attn_kernel_lean, &p, "workers=3", what);
            fx_free(&p);
        }
}

/* Self-attention shapes (Nq = Nk) are valid inputs too, if not fast ones:
 * several query tiles per KV head, a mask per row. */
Test(decode, decode_and_lean_match_oracle_with_many_query_tiles)
{
    for (int m = 0; m < 3; m++) {
        attn_args a = fx_args(2, 4, 2, 130, 130, 32, m == 2 ? "window:wl=5,wr=3" : masks[m], 2);
        fx_problem p;
        fx_make(&p, &a, 7 + (uint64_t)m);
        assert_matches_oracle(&attn_kernel_decode, &p, "ls=64", masks[m]);
        assert_matches_oracle(&attn_kernel_decode, &p, NULL, masks[m]);
        assert_matches_oracle(&attn_kernel_lean, &p, "workers=3", masks[m]);
        assert_matches_oracle(&attn_kernel_lean, &p, "workers=7", masks[m]);
        fx_free(&p);
    }
}

static int bits_equal(const fx_problem *x, const float *o, const float *lse)
{
    size_t no = (size_t)(x->o.B * x->o.sb), nl = (size_t)(x->a.B * x->a.H * x->a.Nq);
    return memcmp(x->o.data, o, sizeof(float) * no) == 0 && memcmp(x->lse, lse, sizeof(float) * nl) == 0;
}

/* max |x - y| over the outputs, and over the finite logsumexps (the same
 * rows must be -inf in both). */
static double max_diff_from(const fx_problem *x, const float *o, const float *lse, double *lse_diff)
{
    size_t no = (size_t)(x->o.B * x->o.sb), nl = (size_t)(x->a.B * x->a.H * x->a.Nq);
    double d = 0;
    *lse_diff = 0;
    for (size_t i = 0; i < no; i++)
        d = fmax(d, fabs((double)x->o.data[i] - (double)o[i]));
    for (size_t i = 0; i < nl; i++) {
        if (isinf(x->lse[i]) || isinf(lse[i]))
            *lse_diff = fmax(*lse_diff, x->lse[i] == lse[i] ? 0.0 : INFINITY);
        else
            *lse_diff = fmax(*lse_diff, fabs((double)x->lse[i] - (double)lse[i]) / (1 + fabs((double)lse[i])));
    }
    return d;
}

/* With ls >= Nk there is one partition and the merge is exp(0) = 1: decode
 * is flash's loop over the same tiles. In the lane and group layouts (here
 * Nq = 4: 16 rows per group) every operation is flash's, in flash's order,
 * and must give the same bits; the dot layout of few rows (Nq = 1: 4 rows)
 * sums each score in vector-wide partial sums, so there it must agree to
 * rounding (outputs within 1e-5 of |V| <= 1, logsumexp 1e-6 relative).
 * Lean with one worker has one segment per group, the same thing. */
Test(decode, one_partition_equals_flash)
{
    static const int64_t Nqs[] = {1, 4}, Nks[] = {1, 1000, 4097};
    for (int iq = 0; iq < 2; iq++)
        for (int ik = 0; ik < 3; ik++)
            for (int m = 0; m < 3 + N_MORE_MASKS; m++) {
                const char *mask = m < 3 ? masks[m] : more_masks[m - 3];
                char what[96];
                snprintf(what, sizeof what, "Nq=%ld Nk=%ld %s", (long)Nqs[iq], (long)Nks[ik], mask);
                /* D = 80 takes the lane layout (flash's), D = 64 the group layout */
                attn_args a = fx_args(1, 8, 2, Nqs[iq], Nks[ik], ik == 1 ? 80 : 64, mask, 2);
                fx_problem p;
                fx_make(&p, &a, 200 + (uint64_t)(iq * 21 + ik * 7 + m));
                size_t no = sizeof(float) * (size_t)(p.o.B * p.o.sb), nl = sizeof(float) * (size_t)(8 * Nqs[iq]);
                float *o = malloc(no), *lse = malloc(nl);
                /* flash's tiled path: its per-row path (auto on a random mask) sums in another order */
                run_with(&attn_kernel_flash, &p, "gather=off", what);
                memcpy(o, p.o.data, no), memcpy(lse, p.lse, nl);
                static const char *const runs[2][2] = {{"decode", "ls=4097"}, {"lean", "workers=1"}};
                for (int r = 0; r < 2; r++) {
                    run_with(r ? &attn_kernel_lean : &attn_kernel_decode, &p, runs[r][1], what);
                    double dl, dox = max_diff_from(&p, o, lse, &dl);
                    if (Nqs[iq] == 4)
                        cr_assert(bits_equal(&p, o, lse), "%s %s != flash: %s", runs[r][0], runs[r][1], what);
                    else
                        cr_assert(dox <= 1e-5 && dl <= 1e-6, "%s %s vs flash: %s: O %g, lse %g", runs[r][0],
                                  runs[r][1], what, dox, dl);
                }
                free(o), free(lse);
                fx_free(&p);
            }
}

/* The grouped shapes of the decode grid: 8, 16, 32 and 64 query rows per KV
 * head (GQA 8:1 and 16:1 at one query, 4:1 to 16:1 at four), D 64, 128 and
 * 256, odd KV lengths (a partial last tile, a partial last 12-key score
 * block). Groups of more than 8 rows take the group layout (scores with the
 * rows in the lanes, P V with V rows in place, the next tile prefetched):
 * one partition must equal flash bitwise, as must lean with one worker;
 * 8 rows take the dot layout (rounding, as in one_partition_equals_flash).
 * Several partitions and workers, under a causal and a sink mask too, must
 * match the oracle. */
Test(decode, group_layout_at_8_to_64_rows_per_kv_head_equals_flash, .timeout = 120)
{
    /* (H, H_kv, Nq): rows per KV head = H / H_kv * Nq */
    static const int64_t shapes[][3] = {{8, 1, 1}, {16, 1, 1}, {8, 2, 4}, {16, 2, 4}, {16, 1, 4}};
    static const int64_t Ds[] = {64, 128, 256}, Nks[] = {333, 1001};
    static const char *const gmasks[] = {"full", "causal", "sink:n=4,w=64"};
    for (int s = 0; s < 5; s++)
        for (int id = 0; id < 3; id++)
            for (int m = 0; m < 3; m++) {
                int64_t H = shapes[s][0], Hkv = shapes[s][1], Nq = shapes[s][2], Nk = Nks[(s + id + m) % 2];
                int64_t rows = H / Hkv * Nq;
                char what[128];
                snprintf(what, sizeof what, "rows=%ld H=%ld H_kv=%ld Nq=%ld Nk=%ld D=%ld %s", (long)rows, (long)H,
                         (long)Hkv, (long)Nq, (long)Nk, (long)Ds[id], gmasks[m]);
                attn_args a = fx_args(1, H, Hkv, Nq, Nk, Ds[id], gmasks[m], 2);
                fx_problem p;
                fx_make(&p, &a, 900 + (uint64_t)(s * 9 + id * 3 + m));
                size_t no = sizeof(float) * (size_t)(p.o.B * p.o.sb), nl = sizeof(float) * (size_t)(H * Nq);
                float *o = malloc(no), *lse = malloc(nl);
                run_with(&attn_kernel_flash, &p, "gather=off", what);
                memcpy(o, p.o.data, no), memcpy(lse, p.lse, nl);
                static const char *const runs[2][2] = {{"decode", "ls=100000"}, {"lean", "workers=1"}};
                for (int r = 0; r < 2; r++) {
                    run_with(r ? &attn_kernel_lean : &attn_kernel_decode, &p, runs[r][1], what);
                    double dl, dox = max_diff_from(&p, o, lse, &dl);
                    if (rows > 8)
                        cr_assert(bits_equal(&p, o, lse), "%s %s != flash: %s (O %g, lse %g)", runs[r][0],
                                  runs[r][1], what, dox, dl);
                    else
                        cr_assert(dox <= 1e-5 && dl <= 1e-6, "%s %s vs flash: %s: O %g, lse %g", runs[r][0],
                                  runs[r][1], what, dox, dl);
                }
                assert_matches_oracle(&attn_kernel_decode, &p, "ls=96", what);
                assert_matches_oracle(&attn_kernel_lean, &p, "workers=3", what);
                free(o), free(lse);
                fx_free(&p);
            }
}

/* max over the H rows of query t: |O - O_ref| / vmax and the lse error |lse - lse_ref| / (1 + |lse_ref|). */
static void assert_rows_close(const attn_tensor *o, const float *lse, const attn_tensor *ref, const float *ref_lse,
                              int64_t t, int64_t Nq_ref, double vmax, double tol, const char *what)
{
    for (int64_t h = 0; h < o->H; h++) {
        const float *x = attn_at(o, 0, h, 0), *y = attn_at(ref, 0, h, t);
        for (int64_t d = 0; d < o->D; d++)
            cr_assert(fabs((double)x[d] - (double)y[d]) <= tol * vmax, "%s t=%ld h=%ld d=%ld: %g vs %g", what,
                      (long)t, (long)h, (long)d, x[d], y[d]);
        double l = lse[h], lr = ref_lse[h * Nq_ref + t];
        cr_assert(fabs(l - lr) <= 1e-5 * (1 + fabs(lr)), "%s t=%ld h=%ld: lse %g vs %g", what, (long)t, (long)h, l, lr);
    }
}

/* StreamingLLM (docs/kernels/streaming.md): decoding one token at a time over
 * 3 (n_sink + wl) tokens gives the rows of the flash prefill with the same
 * sink mask. Step t is one query against the t + 1 keys so far; bottom-right
 * alignment (Nq = 1) puts the query at position Nk - 1 = t. Two caches: the
 * whole history under the sink mask (decode with ls = 64: several
 * partitions, most of them masked; lean with 3 workers), and the rolling
 * cache proper, a ring buffer of the n_sink first and the wl + 1 latest keys
 * under FULL (the softmax does not depend on the order of its keys). */
Test(decode, rolling_sink_decode_equals_flash_prefill_row_by_row, .timeout = 60)
{
    enum { NS = 4, WL = 64, T = 3 * (NS + WL), C = NS + WL + 1, H = 4, HKV = 2, D = 64 };
    const char *sink = "sink:n=4,w=64";
    attn_args pa = fx_args(1, H, HKV, T, T, D, sink, 2);
    fx_problem pre;
    fx_make(&pre, &pa, 800);
    run_with(&attn_kernel_flash, &pre, NULL, "prefill");
    cr_assert(fx_err_o(&pre) <= fx_tol_o(T) && fx_err_lse(&pre) <= 1e-5, "flash prefill vs oracle");
    double vmax = 0;
    for (int64_t n = 0; n < pre.v.B * pre.v.sb; n++)
        vmax = fmax(vmax, fabs((double)pre.v.data[n]));

    attn_tensor o = {attn_alloc(sizeof(float) * H * D), 1, H, 1, D, H * D, D, D};
    attn_tensor kc = {attn_alloc(sizeof(float) * HKV * C * D), 1, HKV, C, D, HKV * C * D, C * D, D};
    attn_tensor vc = kc;
    vc.data = attn_alloc(sizeof(float) * HKV * C * D);
    float lse[H];
    for (int64_t t = 0; t < T; t++) {
        attn_tensor q = pre.q, k = pre.k, v = pre.v;
        q.data = attn_at(&pre.q, 0, 0, t), q.N = 1; /* row t of every head */
        k.N = v.N = t + 1;
        /* the rolling cache: token t replaces the oldest window token */
        int64_t slot = t < NS ? t : NS + (t - NS) % (WL + 1), nc = t + 1 < C ? t + 1 : C;
        for (int64_t h = 0; h < HKV; h++) {
            memcpy(attn_at(&kc, 0, h, slot), attn_at(&pre.k, 0, h, t), sizeof(float) * D);
            memcpy(attn_at(&vc, 0, h, slot), attn_at(&pre.v, 0, h, t), sizeof(float) * D);
        }
        attn_tensor kr = kc, vr = vc;
        kr.N = vr.N = nc;
        struct {
            const attn_kernel *k;
            const char *param, *mask;
            attn_io io;
            int64_t nk;
        } runs[] = {{&attn_kernel_decode, "ls=64", sink, {.q = q, .k = k, .v = v, .o = o, .lse = lse}, t + 1},
                    {&attn_kernel_lean, "workers=3", sink, {.q = q, .k = k, .v = v, .o = o, .lse = lse}, t + 1},
                    {&attn_kernel_decode, "ls=16", "full", {.q = q, .k = kr, .v = vr, .o = o, .lse = lse}, nc},
                    {&attn_kernel_lean, "workers=2", "full", {.q = q, .k = kr, .v = vr, .o = o, .lse = lse}, nc}};
        for (int r = 0; r < 4; r++) {
            attn_args a = fx_args_params(1, H, HKV, 1, runs[r].nk, D, runs[r].mask, 2, runs[r].param);
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(runs[r].k, &a, &ctx), 0, "%s", attn_last_error());
            memset(o.data, 0xff, sizeof(float) * H * D);
            cr_assert_eq(runs[r].k->forward(&ctx, &runs[r].io), 0, "%s", attn_last_error());
            attn_ctx_destroy(&ctx);
            char what[64];
            snprintf(what, sizeof what, "%s %s %s", runs[r].k->name, runs[r].param, runs[r].mask);
            assert_rows_close(&o, lse, &pre.o, pre.lse, t, T, vmax, fx_tol_o(T), what);
        }
    }
    attn_free(o.data), attn_free(kc.data), attn_free(vc.data);
    fx_free(&pre);
}

/* A window of 500 keys leaves partitions 0-2 of 1024 keys fully masked: the
 * result must be the bits of the same problem cropped to keys 3072..4096
 * (k_off = 3072 keeps the positions), and the masked keys are poisoned with
 * large values so any contribution would show. */
Test(decode, all_masked_partitions_add_nothing)
{
    attn_args a = fx_args(1, 4, 2, 4, 4097, 64, "window:wl=500,wr=0", 2);
    attn_args c = fx_args(1, 4, 2, 4, 1025, 64, "window:wl=500,wr=0", 2);
    c.q_off = a.q_off, c.k_off = 3072;
    fx_problem p, q;
    fx_make(&p, &a, 300);
    fx_make(&q, &c, 301);
    for (int64_t h = 0; h < 2; h++) /* same inputs on the live keys, poison on the masked ones */
        for (int64_t j = 0; j < 4097; j++)
            for (int64_t d = 0; d < 64; d++) {
                float *k = attn_at(&p.k, 0, h, j) + d, *v = attn_at(&p.v, 0, h, j) + d;
                if (j >= 3072)
                    *k = attn_at(&q.k, 0, h, j - 3072)[d], *v = attn_at(&q.v, 0, h, j - 3072)[d];
                else
                    *k = 1e3f, *v = -1e3f;
            }
    memcpy(p.q.data, q.q.data, sizeof(float) * (size_t)(q.q.B * q.q.sb));
    const attn_kernel *ks[] = {&attn_kernel_decode, &attn_kernel_lean};
    /* lean: three workers on the full cache put a fully masked segment before
     * each group's live one; the cropped cache has one segment per group */
    const char *pq[] = {"ls=1024", "workers=1"}, *pp[] = {"ls=1024", "workers=3"};
    for (int k = 0; k < 2; k++) {
        run_with(ks[k], &q, pq[k], "cropped");
        cr_assert(fx_err_o(&q) <= fx_tol_o(1025) && fx_err_lse(&q) <= 1e-5, "%s cropped vs oracle", ks[k]->name);
        run_with(ks[k], &p, pp[k], "full cache");
        cr_assert(bits_equal(&p, q.o.data, q.lse), "%s: all-masked partitions changed the result", ks[k]->name);
    }
    fx_free(&p);
    fx_free(&q);
}

/* attn_args.kv_len: each sequence is checked against an independent oracle
 * run on that sequence alone (B = 1, Nk = kv_len[b], bottom-right aligned),
 * which also checks the oracle's own ragged-batch support (fx_make's answers). */
Test(decode, ragged_batch_equals_per_sequence_oracle)
{
    static const int64_t lens[] = {4097, 1, 1000, 0, 130};
    for (int m = 0; m < 3; m++) {
        attn_args a = fx_args(5, 4, 2, 3, 4097, 32, masks[m], 2);
        a.kv_len = lens;
        fx_problem p;
        fx_make(&p, &a, 400 + (uint64_t)m);
        /* fx_make's oracle honours kv_len: compare it with per-sequence oracles */
        for (int64_t b = 0; b < 5; b++) {
            attn_args one = fx_args(1, 4, 2, 3, lens[b], 32, masks[m], 1); /* 0 keys: rows fully masked */
            attn_tensor_f64 q = p.q64, k = p.k64, v = p.v64, o = p.o64;
            q.data += b * q.sb, k.data += b * k.sb, v.data += b * v.sb;
            q.B = k.B = v.B = o.B = 1, k.N = v.N = lens[b];
            o.data = calloc((size_t)o.sb, sizeof(double));
            double lse[12];
            attn_oracle_forward_f64(&one, &q, &k, &v, &o, lse);
            for (int64_t r = 0; r < 12; r++) {
                double ref = p.lse64[b * 12 + r];
                cr_assert(lse[r] == ref || fabs(lse[r] - ref) <= 1e-12 * fabs(ref), "oracle b=%ld row %ld: %g vs %g",
                          (long)b, (long)r, ref, lse[r]);
            }
            for (int64_t n = 0; n < o.sb; n++)
                cr_assert(fabs(o.data[n] - p.o64.data[b * o.sb + n]) <= 1e-12, "oracle b=%ld O differs", (long)b);
            free(o.data);
        }
        assert_matches_oracle(&attn_kernel_decode, &p, "ls=64", masks[m]);
        assert_matches_oracle(&attn_kernel_decode, &p, NULL, masks[m]);
        assert_matches_oracle(&attn_kernel_lean, &p, "workers=1", masks[m]);
        assert_matches_oracle(&attn_kernel_lean, &p, "workers=3", masks[m]);
        assert_matches_oracle(&attn_kernel_lean, &p, "workers=64", masks[m]); /* more workers than tiles */
        for (int64_t h = 0; h < 4; h++) /* sequence 3 has no keys */
            for (int64_t i = 0; i < 3; i++)
                cr_assert(isinf(p.lse[(3 * 4 + h) * 3 + i]) && attn_at(&p.o, 3, h, i)[0] == 0.0f);
        fx_free(&p);
    }
}

Test(decode, kernels_without_varlen_refuse_a_ragged_batch)
{
    static const int64_t lens[] = {10, 5};
    attn_args a = fx_args(2, 2, 2, 1, 10, 16, "full", 1);
    a.kv_len = lens;
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &a), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "VARLEN"), "%s", attn_last_error());
    cr_assert_eq(attn_args_validate(&attn_kernel_decode, &a), 0);
    static const int64_t bad[] = {10, 11};
    a.kv_len = bad;
    cr_assert_eq(attn_args_validate(&attn_kernel_decode, &a), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "kv_len[1]"), "%s", attn_last_error());
}

/* Both with the thread count free (decode) and with W pinned (lean). */
static void assert_same_bits_at_1_and_2_threads(const char *kernel_param, const attn_kernel *k, const int64_t *lens,
                                                const char *mask)
{
    attn_args a = fx_args(3, 8, 2, 4, 4097, 64, mask, 1);
    a.kv_len = lens;
    fx_add_params(&a, kernel_param);
    fx_problem p1, p2;
    fx_make(&p1, &a, 9);
    a.threads = 2;
    fx_make(&p2, &a, 9);
    cr_assert_eq(fx_run(k, &p1, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(k, &p2, 0), 0, "%s", attn_last_error());
    cr_assert(bits_equal(&p1, p2.o.data, p2.lse), "%s %s %s: 1 and 2 threads differ", k->name, kernel_param, mask);
    fx_free(&p1);
    fx_free(&p2);
}

Test(decode, results_bitwise_identical_with_one_and_two_threads)
{
    static const int64_t lens[] = {4097, 77, 2000};
    assert_same_bits_at_1_and_2_threads("ls=64", &attn_kernel_decode, NULL, "causal");
    assert_same_bits_at_1_and_2_threads("ls=1024", &attn_kernel_decode, lens, "causal");
    assert_same_bits_at_1_and_2_threads("workers=3", &attn_kernel_lean, lens, "causal");
    /* the mask bytes of the element predicate are per thread */
    assert_same_bits_at_1_and_2_threads("ls=64", &attn_kernel_decode, lens, "random:p=0.1,seed=3");
    assert_same_bits_at_1_and_2_threads("workers=3", &attn_kernel_lean, lens, "sink:n=4,w=64");
}

Test(decode, cost_model_counts_each_sequence_at_its_own_length)
{
    static const int64_t lens[] = {1000, 24};
    attn_args a = fx_args(2, 8, 2, 1, 1000, 64, "full", 1);
    a.kv_len = lens;
    double keys = 1024, D = 64;
    cr_assert_float_eq(attn_kernel_decode.flops(&a, ATTN_PASS_FWD), 4 * D * 8 * keys, 1e-6);
    cr_assert_float_eq(attn_kernel_lean.bytes(&a, ATTN_PASS_FWD), 4 * (2 * (2 * 8 * D + 8) + 2 * 2 * keys * D), 1e-6);
    cr_assert_eq(attn_kernel_decode.state_bytes(&a), (size_t)(2 * 2 * keys * D * 4));
    a.kv_len = NULL;
    cr_assert_float_eq(attn_kernel_decode.flops(&a, ATTN_PASS_FWD), 4 * D * 8 * 2000, 1e-6);
}

Test(decode, rejects_bad_and_unknown_params_with_a_message)
{
    static const char *const bad[][2] = {{"decode", "ls=0"}, {"decode", "workers=2"}, {"lean", "workers=0"},
                                         {"lean", "ls=64"}, {"decode", "bc=x"}};
    for (int i = 0; i < 5; i++) {
        attn_args a = fx_args_params(1, 2, 2, 1, 100, 16, "full", 1, bad[i][1]);
        const attn_kernel *k = strcmp(bad[i][0], "decode") == 0 ? &attn_kernel_decode : &attn_kernel_lean;
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(k, &a, &ctx), ATTN_EINVAL, "%s %s accepted", bad[i][0], bad[i][1]);
        cr_assert(strstr(attn_last_error(), bad[i][1][0] == 'b' ? "bc" : bad[i][1][0] == 'l' ? "ls" : "workers"),
                  "%s", attn_last_error());
    }
}
