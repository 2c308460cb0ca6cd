/* `streaming`: StreamingLLM (Xiao, Tian, Chen, Han, Lewis, "Efficient
 * Streaming Language Models with Attention Sinks", 2023; docs/kernels/streaming.md).
 * Each query attends to the first n_sink positions (the attention sinks) and
 * to itself and its wl predecessors: mask SINK_WINDOW `sink:n=n_sink,w=wl`.
 * The kernel accepts only that mask kind, and the cache size comes from it
 * (no separate sinks/window parameters, so the oracle compares against the
 * very mask the cache implements).
 *
 * mode=prefill (default): softmax attention under the mask, delegated to the
 * public `flash` kernel object (its tile classifier skips the empty tiles
 * between the sinks and the window).
 *
 * mode=decode: what a serving system does. Per (b, KV head) a rolling cache
 * of C = n_sink + wl + 1 slots (slots [0, n_sink) hold the sink positions,
 * the other wl + 1 form a ring buffer in which a new key evicts the oldest
 * non-sink one). The keys are streamed in position order, K/V rows are
 * copied into the cache as they arrive, and each query is answered, once
 * every key up to its position has arrived, from the cache alone: one
 * sgemm for the G query heads of the KV head against the filled slots, a
 * row softmax, one sgemm with the cached values. The cache is the only K/V
 * the answer reads; ctx->state_bytes_used is its size.
 *
 * Backward (both modes): the flash backward of the same function. Training
 * never runs through a rolling cache; decode's O and lse equal prefill's up
 * to rounding, so the flash backward is the gradient of either.
 *
 * Tasks (b, KV head) are independent and computed in a fixed order, so both
 * modes are bitwise identical for any thread count. */
#include "streaming.h"

#include "kernels/core/counters.h"
#include "kernels/flash/flash.h"
#include "kernels/flash/flash_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int decode;            /* mode=decode */
    attn_ctx flash;        /* the delegate's context; its workspace is ours */
    int64_t C;             /* cache slots per (b, KV head) */
    size_t cache_floats;   /* K and V caches of the whole batch */
    size_t thread_floats;  /* per-thread scores of one position (G x C) */
} stream_priv;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

enum { STREAM_PREFILL, STREAM_DECODE };
static const char *const stream_modes[] = {"prefill", "decode", NULL};
static const opt_def stream_params[] = {
    {.name = "mode", .type = OPT_ENUM, .names = stream_modes, .def = STREAM_PREFILL,
     .help = "decode: rolling cache of n_sink+wl+1 slots from mask sink:n=..,w=.."},
    FLASH_TILE_PARAMS, /* passed to flash */
    {0},
};

/* The flash problem: the same arguments with only flash's own parameters. */
static attn_args flash_args_of(const attn_args *a)
{
    attn_args f = *a;
    memset(&f.params, 0, sizeof f.params);
    for (int i = 0; i < a->params.n; i++)
        if (strcmp(a->params.key[i], "br") == 0 || strcmp(a->params.key[i], "bc") == 0) {
            f.params.n++;
            memcpy(f.params.key[f.params.n - 1], a->params.key[i], sizeof f.params.key[0]);
            memcpy(f.params.val[f.params.n - 1], a->params.val[i], sizeof f.params.val[0]);
        }
    return f;
}

static void stream_fini(attn_ctx *ctx)
{
    stream_priv *p = ctx->priv;
    if (p && attn_kernel_flash.fini)
        attn_kernel_flash.fini(&p->flash);
    free(p);
    ctx->priv = NULL;
}

static int stream_init(attn_ctx *ctx, const attn_args *a)
{
    int rc = attn_params_check(a, "streaming", stream_params);
    int decode = rc ? 0 : attn_param_enum(a, stream_params, "mode", &rc) == STREAM_DECODE;
    if (rc)
        return rc;
    if (a->mask.kind != ATTN_MASK_SINK_WINDOW) /* attn_args_validate refuses it already */
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'streaming': expected mask sink:n=..,w=.., found another kind");
    if (decode && a->k_off < 0)
        return attn_fail(ATTN_EINVAL, "kernel 'streaming' mode=decode: expected k_off >= 0, found %lld",
                         (long long)a->k_off);
    stream_priv *p = calloc(1, sizeof *p);
    if (!p)
        return attn_fail(ATTN_ENOMEM, "kernel 'streaming': cannot allocate its context");
    ctx->priv = p;
    p->decode = decode;
    size_t flash_bytes = 0;
    if (!decode || a->backward) {
        p->flash.kernel = &attn_kernel_flash;
        p->flash.args = flash_args_of(a);
        if ((rc = attn_kernel_flash.init(&p->flash, &p->flash.args)) != 0) {
            stream_fini(ctx); /* attn_ctx_create does not call fini after a failed init */
            return rc;
        }
        flash_bytes = p->flash.workspace_bytes;
    }
    size_t decode_bytes = 0;
    if (decode) {
        p->C = attn_streaming_cache_slots(&a->mask);
        p->cache_floats = (size_t)(2 * a->B * a->H_kv * p->C * a->D);
        p->thread_floats = round16((size_t)(a->H / a->H_kv * p->C));
        decode_bytes = sizeof(float) * (p->cache_floats + p->thread_floats * (size_t)a->threads);
        ctx->state_bytes_used = sizeof(float) * p->cache_floats;
    }
    /* the cache is dead once forward returns, so the flash backward reuses its bytes */
    ctx->workspace_bytes = flash_bytes > decode_bytes ? flash_bytes : decode_bytes;
    return 0;
}

/* The cache of one (b, KV head) after the keys at positions k_off .. p_last
 * arrived: the position slot s holds, or -1 when empty. Sinks sit at their
 * position; non-sink position p (from p0 = max(k_off, n_sink) on) at
 * n_sink + (p - p0) mod W, so a slot holds the latest position of its
 * residue class. */
static int64_t slot_position(const attn_mask *m, int64_t k_off, int64_t p_last, int64_t s)
{
    int64_t W = m->wl + 1, p0 = k_off > m->n_sink ? k_off : m->n_sink;
    if (s < m->n_sink)
        return s >= k_off && s <= p_last ? s : -1;
    int64_t r = s - m->n_sink, count = p_last >= p0 ? p_last - p0 + 1 : 0;
    return r < count ? p0 + r + W * ((count - 1 - r) / W) : -1;
}

typedef struct {
    double flops, bytes;
} stream_tally;

/* Answers query i of heads hk*G .. hk*G+G-1 from the cache holding the keys
 * up to position p_last. Kc, Vc: [C][D]; S: G x C scores.
 * S (G, n) = sc Q_i (G, D) @ Kc[0:n]^T; masked slots -inf; P = softmax rows;
 * O_i (G, D) = P @ Vc[0:n]. */
static void stream_answer(const attn_args *a, const stream_priv *p, const attn_io *io, int64_t b, int64_t hk,
                          int64_t i, int64_t p_last, const float *Kc, const float *Vc, float *S, stream_tally *t)
{
    const attn_mask *m = &a->mask;
    int64_t G = a->H / a->H_kv, D = a->D, C = p->C, pi = a->q_off + i;
    int64_t W = m->wl + 1, p0 = a->k_off > m->n_sink ? a->k_off : m->n_sink;
    int64_t count = p_last >= p0 ? p_last - p0 + 1 : 0;
    int64_t n = m->n_sink + (count < W ? count : W); /* filled prefix of the cache */
    if (n > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)G, (int)n, (int)D, (float)attn_scale(a),
                    attn_at(&io->q, b, hk * G, i), (int)io->q.sh, Kc, (int)D, 0.0f, S, (int)C);
        t->flops += 4.0 * (double)(G * n * D);
        t->bytes += 8.0 * (double)(n * D);
    }
    /* SINK_WINDOW does not vary by head: one predicate per slot for all G rows */
    for (int64_t s = 0; s < n; s++) {
        int64_t pos = slot_position(m, a->k_off, p_last, s);
        if (pos < 0 || !attn_mask_allowed(m, b, hk * G, pi, pos))
            for (int64_t g = 0; g < G; g++)
                S[g * C + s] = -INFINITY;
    }
    for (int64_t g = 0; g < G; g++) {
        float *row = S + g * C, mx = -INFINITY, l = 0;
        for (int64_t s = 0; s < n; s++)
            mx = row[s] > mx ? row[s] : mx;
        for (int64_t s = 0; s < n; s++) {
            row[s] = mx == -INFINITY ? 0.0f : expf(row[s] - mx); /* exp(-inf) = 0 for masked slots */
            l += row[s];
        }
        for (int64_t s = 0; s < n; s++)
            row[s] = l > 0 ? row[s] / l : 0.0f;
        io->lse[(b * a->H + hk * G + g) * a->Nq + i] = l > 0 ? mx + logf(l) : -INFINITY;
    }
    if (n > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)D, (int)n, 1.0f, S, (int)C, Vc,
                    (int)D, 0.0f, attn_at(&io->o, b, hk * G, i), (int)io->o.sh);
    else
        for (int64_t g = 0; g < G; g++)
            memset(attn_at(&io->o, b, hk * G + g, i), 0, sizeof(float) * (size_t)D);
    t->bytes += 4.0 * (double)(G * D);
}

/* Streams the keys of (b, hk) through its cache Kc, Vc ([C][D] each), in
 * position order, answering each query once every key up to its position
 * has arrived. */
static void stream_decode_slice(const attn_args *a, const stream_priv *p, const attn_io *io, int64_t b,
                                int64_t hk, float *Kc, float *Vc, float *S, stream_tally *t)
{
    const attn_mask *m = &a->mask;
    int64_t D = a->D, W = m->wl + 1, p0 = a->k_off > m->n_sink ? a->k_off : m->n_sink, i = 0;
    size_t row = sizeof(float) * (size_t)D;
    memset(Kc, 0, row * (size_t)p->C);
    memset(Vc, 0, row * (size_t)p->C);
    for (int64_t j = 0; j < a->Nk; j++) {
        int64_t pj = a->k_off + j;
        for (; i < a->Nq && a->q_off + i < pj; i++)
            stream_answer(a, p, io, b, hk, i, pj - 1, Kc, Vc, S, t);
        /* arrival of key pj: a sink keeps its slot, any other evicts the oldest of the ring */
        int64_t s = pj < m->n_sink ? pj : m->n_sink + (pj - p0) % W;
        memcpy(Kc + s * D, attn_at(&io->k, b, hk, j), row);
        memcpy(Vc + s * D, attn_at(&io->v, b, hk, j), row);
    }
    for (; i < a->Nq; i++)
        stream_answer(a, p, io, b, hk, i, a->k_off + a->Nk - 1, Kc, Vc, S, t);
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse is (B,H,Nq)
static int stream_forward(attn_ctx *ctx, const attn_io *io)
{
    stream_priv *p = ctx->priv;
    const attn_args *a = &ctx->args;
    if (!p->decode) {
        p->flash.workspace = ctx->workspace;
        return attn_kernel_flash.forward(&p->flash, io);
    }
    int64_t tasks = a->B * a->H_kv, CD = p->C * a->D;
    float *cache = ctx->workspace, *scratch = cache + p->cache_floats;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        stream_tally t = {0, 0};
        float *S = scratch + p->thread_floats * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int64_t task = 0; task < tasks; task++)
            stream_decode_slice(a, p, io, task / a->H_kv, task % a->H_kv, cache + 2 * task * CD,
                                cache + (2 * task + 1) * CD, S, &t);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)t.flops);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t.bytes);
    }
    return 0;
}

static int stream_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    stream_priv *p = ctx->priv;
    if (!p->flash.kernel)
        return attn_fail(ATTN_EINVAL, "kernel 'streaming': backward() without args.backward = 1 at init");
    p->flash.workspace = ctx->workspace;
    return attn_kernel_flash.backward(&p->flash, io, g);
}

/* The rolling cache: K and V of C = n_sink + wl + 1 positions per (b, KV head). */
static size_t stream_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)(2 * a->B * a->H_kv * attn_streaming_cache_slots(&a->mask) * a->D);
}

const attn_kernel attn_kernel_streaming = {
    .name = "streaming",
    .family = "softmax",
    .reference = "Xiao et al. 2023 (StreamingLLM, attention sinks)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_DECODE | ATTN_STATEFUL | ATTN_GQA | ATTN_CROSS |
             ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_SINK_WINDOW),
    .params = stream_params,
    .init = stream_init,
    .forward = stream_forward,
    .backward = stream_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = stream_state_bytes,
    .fini = stream_fini,
};
