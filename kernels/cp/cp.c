/* Context-parallel attention: the layout of rows over ranks, what a problem
 * must satisfy to be split, the context, and the volume formulas. The
 * passes are in ring.c and ulysses.c. */
#include "cp_internal.h"
#include "harness/measure/cp_model.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int cp_kind_from_name(const char *name)
{
    return !strcmp(name, "ring") ? CP_RING : !strcmp(name, "ulysses") ? CP_ULYSSES : -1;
}

const char *cp_kind_name(cp_kind kind) { return kind == CP_RING ? "ring" : "ulysses"; }

int64_t cp_global_row(cp_kind kind, int64_t N, int P, int rank, int64_t i)
{
    int64_t n = N / P;
    if (kind == CP_ULYSSES)
        return rank * n + i;
    int64_t C = n / 2; /* zigzag: chunk `rank`, then chunk 2P-1-rank */
    return i < C ? rank * C + i : (2 * (int64_t)P - 1 - rank) * C + (i - C);
}

/* Masks whose blocks both kernels were checked on; every one is a pure
 * function of absolute positions, so a block at its offsets is the global
 * problem's block. */
static const uint32_t cp_masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL) |
                                 ATTN_MASK_BIT(ATTN_MASK_WINDOW) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT);

/* The largest message (floats) must fit MPI's int counts. */
static int64_t cp_largest_message(cp_kind kind, const attn_args *a, int P)
{
    int64_t n = a->Nq / P;
    if (kind == CP_RING)
        return 2 * cp_floats(a->B, a->H_kv, n, a->D);
    /* ulysses backward, seq -> heads, to one rank: Q, O, dO, lse of H/P heads, K, V of H_kv/P */
    return a->B * n * ((a->D * 3 + 1) * (a->H / P) + 2 * a->D * (a->H_kv / P));
}

int cp_check(cp_kind kind, const attn_args *a, int P)
{
    const char *name = cp_kind_name(kind);
    if (a->Nq != a->Nk || a->q_off != 0 || a->k_off != 0)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: expected self-attention (N_kv == N, offsets 0), found N=%lld N_kv=%lld",
                         name, (long long)a->Nq, (long long)a->Nk);
    if (a->kv_len || a->seq_len || attn_dv(a) != a->D)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: expected one length for the batch and Dv == D", name);
    if (!(cp_masks & ATTN_MASK_BIT(a->mask.kind))) {
        char m[128];
        attn_mask_format(&a->mask, m, sizeof m);
        return attn_fail(ATTN_EUNSUPPORTED, "%s: expected mask full, causal, window or document, found '%s'", name, m);
    }
    int64_t parts = kind == CP_RING ? 2 * (int64_t)P : P;
    if (a->Nq % parts)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: N=%lld must split into %lld equal %s over %d ranks", name,
                         (long long)a->Nq, (long long)parts, kind == CP_RING ? "zigzag chunks" : "shards", P);
    if (kind == CP_ULYSSES && (a->H % P || a->H_kv % P))
        return attn_fail(ATTN_EUNSUPPORTED, "ulysses: H=%lld and H_kv=%lld must both be multiples of the %d ranks",
                         (long long)a->H, (long long)a->H_kv, P);
    if (cp_largest_message(kind, a, P) > INT_MAX)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: a message of %lld floats exceeds MPI's int count", name,
                         (long long)cp_largest_message(kind, a, P));
    return 0;
}

int cp_ctx_create(cp_kind kind, MPI_Comm comm, const attn_args *a, cp_ctx **out)
{
    *out = NULL;
    cp_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return attn_fail(ATTN_ENOMEM, "cp: context");
    c->kind = kind, c->comm = comm, c->a = *a;
    MPI_Comm_size(comm, &c->P);
    MPI_Comm_rank(comm, &c->rank);
    int rc = cp_check(kind, a, c->P);
    if (!rc)
        rc = attn_mask_bind(&c->a.mask, a->Nq);
    if (!rc) {
        c->n = a->Nq / c->P;
        rc = kind == CP_RING ? cp_ring_alloc(c) : cp_ulysses_alloc(c);
    }
    if (rc) {
        cp_ctx_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

void cp_ctx_destroy(cp_ctx *c)
{
    if (!c)
        return;
    cp_flash_fini(&c->flash);
    for (size_t i = 0; i < sizeof c->buf / sizeof c->buf[0]; i++)
        attn_free(c->buf[i]);
    free(c);
}

int cp_alloc_buffers(cp_ctx *c, const int64_t *sizes, int n)
{
    for (int i = 0; i < n; i++) {
        if (!sizes[i])
            continue;
        size_t bytes = sizeof(float) * (size_t)sizes[i];
        if (!(c->buf[i] = attn_alloc(bytes)))
            return attn_fail(ATTN_ENOMEM, "%s: a buffer of %zu bytes", cp_kind_name(c->kind), bytes);
        c->buf_bytes += bytes;
    }
    return 0;
}

size_t cp_workspace_bytes(const cp_ctx *c) { return c->buf_bytes + c->flash.workspace_bytes; }

int cp_forward(cp_ctx *c, const attn_io *io, cp_stats *st)
{
    return c->kind == CP_RING ? cp_ring_forward(c, io, st) : cp_ulysses_forward(c, io, st);
}

int cp_backward(cp_ctx *c, const attn_io *io, const attn_grads *g, cp_stats *st)
{
    if (!c->a.backward)
        return attn_fail(ATTN_EINVAL, "%s backward: the context was created without args.backward = 1",
                         cp_kind_name(c->kind));
    return c->kind == CP_RING ? cp_ring_backward(c, io, g, st) : cp_ulysses_backward(c, io, g, st);
}

double cp_bytes_per_rank(cp_kind kind, const attn_args *a, int P, attn_pass pass)
{
    cpm_problem p = {.kind = kind == CP_RING ? CPM_RING : CPM_ULYSSES, .B = a->B, .H = a->H, .H_kv = a->H_kv,
                     .N = a->Nq, .D = a->D, .P = P};
    return cpm_bytes_per_rank(&p, pass != ATTN_PASS_FWD);
}
