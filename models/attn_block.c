/* The attention sub-layer of every model (layers.h "attention block"):
 *   q = x Wq^T + bq (B,N,H,D), k = x Wk^T + bk, v = x Wv^T + bv (B,N,H_kv,D),
 *   optional RoPE on q and k, o = kernel(q, k, v [, beta, gate]) (B,N,H,D),
 *   y = o Wo^T + bo (B,N,C).
 * The kernel sees [B,H,N,D] views of the (B,N,H,D) buffers (sb = N H D,
 * sh = D, sn = H D), so nothing is transposed. Extra kernel inputs come from
 * small projections of x: beta = sigmoid(z_b) (the delta rule's write
 * strength beta_t = sigmoid(W_b x_t), Schlag et al. 2021; Yang et al. 2024,
 * DeltaNet) and log-gate = logsigmoid(z_g) / 16 (Gated Linear Attention, Yang
 * et al. 2024: alpha_t = sigmoid(x_t W + b)^(1/tau) with tau = 16, so decays
 * start near 1; fla's gate_logit_normalizer).
 * short_conv = K > 0: q, k and v each pass a depthwise causal convolution of
 * width K and a SiLU (models/short_conv.c) between the projection and RoPE /
 * the kernel. Checked against flash-linear-attention: fla/layers/delta_net.py
 * computes q = q_conv1d(q_proj(x)), k and v alike, each a ShortConvolution
 * (fla/modules/convolution.py: nn.Conv1d, groups = channels, padding K-1
 * truncated to T, bias off by default) with activation 'silu' (for q and k
 * when qk_activation is 'silu', the default; always for v); beta is projected
 * from x without a convolution, as here. fla has no RoPE in DeltaNet; where a
 * model here uses RoPE it rotates the convolved q and k. */
#include "attn_block_internal.h"
#include "kernels/core/mem_budget.h"
#include "kernels/core/kv_cache.h"
#include "profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t gate_cols_of(const attn_kernel *k, int64_t D)
{
    return (k->inputs & ATTN_IN_GATE_VEC) ? D : (k->inputs & ATTN_IN_GATE) ? 1 : 0;
}

static int attn_cfg_check(const nn_attn_cfg *c)
{
    if (!c->kernel)
        return attn_fail(ATTN_EINVAL, "attention block: expected a kernel, found NULL");
    const char *name = c->kernel->name;
    if (!c->eval_only && !c->kernel->backward)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' has no backward: it can be evaluated but not trained",
                         name);
    if (c->kernel->flags & ATTN_ONE_QUERY)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' reads one learned query per head: not a self-attention block",
                         name);
    if (c->C < 1 || c->H < 1 || c->C % c->H != 0)
        return attn_fail(ATTN_EINVAL, "attention block: expected C a multiple of H >= 1, found C=%lld H=%lld",
                         (long long)c->C, (long long)c->H);
    if (c->H_kv < 1 || c->H % c->H_kv != 0)
        return attn_fail(ATTN_EINVAL, "attention block: expected H_kv dividing H=%lld, found %lld", (long long)c->H,
                         (long long)c->H_kv);
    if (c->short_conv < 0 || c->short_conv > NN_SHORT_CONV_MAX)
        return attn_fail(ATTN_EINVAL, "attention block: short_conv: expected 0..%d, found %d", NN_SHORT_CONV_MAX,
                         c->short_conv);
    if (c->rope && (c->C / c->H) % 2 != 0)
        return attn_fail(ATTN_EINVAL, "attention block: RoPE expects an even head dim, found D=%lld",
                         (long long)(c->C / c->H));
    return 0;
}

/* The problem the kernel's own inputs are sized and drawn for: its
 * parameters, D and the longest sequence the block serves (weights such as a
 * synthesizer's L x L logits depend on it; a plan at any N up to it reads
 * them). */
static attn_args weights_args(const nn_attn_cfg *cfg)
{
    int64_t n = cfg->max_len > 0 ? cfg->max_len : 1;
    return (attn_args){.B = 1, .H = cfg->H, .H_kv = cfg->H_kv, .Nq = n, .Nk = n, .D = cfg->C / cfg->H,
                       .params = cfg->params};
}

int nn_attn_bind(nn_attn *l, const nn_attn_cfg *cfg, nn_blob *blob)
{
    int rc = attn_cfg_check(cfg);
    if (rc)
        return rc;
    *l = (nn_attn){.cfg = *cfg, .D = cfg->C / cfg->H};
    int64_t C = cfg->C, D = l->D;
    l->gate_cols = gate_cols_of(cfg->kernel, D);
    if ((rc = nn_dense_bind(&l->q, C, cfg->H * D, 1, blob)) || (rc = nn_dense_bind(&l->k, C, cfg->H_kv * D, 1, blob)) ||
        (rc = nn_dense_bind(&l->v, C, cfg->H_kv * D, 1, blob)) || (rc = nn_dense_bind(&l->o, cfg->H * D, C, 1, blob)))
        return rc;
    if ((cfg->kernel->inputs & ATTN_IN_BETA) && (rc = nn_dense_bind(&l->beta, C, cfg->H_kv, 1, blob)))
        return rc;
    if (l->gate_cols && (rc = nn_dense_bind(&l->gate, C, cfg->H_kv * l->gate_cols, 1, blob)))
        return rc;
    int64_t K = cfg->short_conv;
    if (K && ((rc = nn_short_conv_bind(&l->cq, cfg->H * D, K, blob)) ||
              (rc = nn_short_conv_bind(&l->ck, cfg->H_kv * D, K, blob)) ||
              (rc = nn_short_conv_bind(&l->cv, cfg->H_kv * D, K, blob))))
        return rc;
    attn_args a = weights_args(cfg);
    l->router_cols = attn_router_cols(cfg->kernel, &a), l->w_cols = attn_weight_cols(cfg->kernel, &a);
    if ((cfg->kernel->inputs & ATTN_IN_ROUTER) && l->router_cols < 1)
        return attn_fail(ATTN_EINVAL, "kernel '%s': expected router columns >= 1 (check its parameters)",
                         cfg->kernel->name);
    /* w_cols = 0: the kernel reads no weights with these parameters (nystrom
     * without its conv skip), or they are bad and its init says which */
    if (l->router_cols && (rc = nn_dense_bind(&l->router, C, cfg->H_kv * l->router_cols, 1, blob)))
        return rc;
    if (l->w_cols && (l->off_w = nn_blob_take(blob, (size_t)(cfg->H * l->w_cols), &l->w, &l->dw)) == SIZE_MAX)
        return ATTN_EINVAL;
    return 0;
}

/* The learned weights as the kernel's [1,H,1,W] input. */
static attn_tensor weights_view(const nn_attn *l, float *p)
{
    int64_t H = l->cfg.H, W = l->w_cols;
    return (attn_tensor){.data = p, .B = 1, .H = H, .N = 1, .D = W, .sb = H * W, .sh = W, .sn = W};
}

size_t nn_attn_param_count(const nn_attn_cfg *cfg)
{
    nn_attn l;
    nn_blob cnt = {0};
    return nn_attn_bind(&l, cfg, &cnt) ? SIZE_MAX : cnt.used;
}

void nn_attn_init(const nn_attn *l, attn_rng *r)
{
    nn_dense_init(&l->q, r);
    nn_dense_init(&l->k, r);
    nn_dense_init(&l->v, r);
    nn_dense_init(&l->o, r);
    if (nn_attn_has_beta(l))
        nn_dense_init(&l->beta, r);
    if (l->gate_cols)
        nn_dense_init(&l->gate, r);
    if (l->cfg.short_conv) {   /* after every other tensor: models without it draw the same weights as before */
        nn_short_conv_init(&l->cq, r);
        nn_short_conv_init(&l->ck, r);
        nn_short_conv_init(&l->cv, r);
    }
    if (l->router_cols)
        nn_dense_init(&l->router, r);
    if (l->w_cols) {
        attn_tensor w = weights_view(l, l->w);
        attn_args a = weights_args(&l->cfg);
        if (l->cfg.kernel->init_weights)
            l->cfg.kernel->init_weights(&a, &w, attn_rng_next(r));
        else
            for (int64_t i = 0; i < l->cfg.H * l->w_cols; i++)
                l->w[i] = (float)((2 * attn_rng_uniform(r) - 1) / sqrt((double)l->D));
    }
}

/* The lengths the kernel sees: a padded batch only for a PADDED kernel. */
static const int64_t *kernel_seq_len(const nn_attn *l, const int64_t *seq_len)
{
    return l->cfg.kernel->flags & ATTN_PADDED ? seq_len : NULL;
}

attn_args nn_attn_block_args(const nn_attn *l, int64_t B, int64_t N, int threads, const int64_t *seq_len)
{
    attn_args a = {.B = B, .H = l->cfg.H, .H_kv = l->cfg.H_kv, .Nq = N, .Nk = N, .D = l->D, .mask = l->cfg.mask,
                   .threads = threads, .backward = !l->cfg.eval_only, .params = l->cfg.params, .kv_dtype = l->cfg.kv_dtype,
                   .dtype = l->cfg.dtype,
                   .seq_len = kernel_seq_len(l, seq_len)};
    attn_args_defaults(&a);
    return a;
}

/* Hands the batch's lengths to the planned context (validated: a length
 * outside [0, N] would make the kernel read out of bounds). */
static int bind_seq_len(nn_attn *l)
{
    const int64_t *len = kernel_seq_len(l, l->seq_len);
    for (int64_t b = 0; len && b < l->B; b++)
        if (len[b] < 0 || len[b] > l->N)
            return attn_fail(ATTN_EINVAL, "attention block: seq_len[%lld]: expected an integer in [0, N=%lld], found %lld",
                             (long long)b, (long long)l->N, (long long)len[b]);
    l->ctx.args.seq_len = len;
    return 0;
}

int nn_attn_plan(nn_attn *l, int64_t B, int64_t N, int threads)
{
    nn_attn_free(l);
    attn_args a = nn_attn_block_args(l, B, N, threads, NULL); /* lengths come with each batch */
    int64_t cols = attn_weight_cols(l->cfg.kernel, &a);
    if (l->w_cols && cols > l->w_cols) /* a shorter N: the kernel judges what it can do with them */
        return attn_fail(ATTN_EINVAL, "attention block: kernel '%s' sizes its learned weights by the length: the "
                                      "block's cover N=%lld (%lld per head), expected N <= %lld, found N=%lld (%lld per head)",
                         l->cfg.kernel->name, (long long)(l->cfg.max_len > 0 ? l->cfg.max_len : 1), (long long)l->w_cols,
                         (long long)(l->cfg.max_len > 0 ? l->cfg.max_len : 1), (long long)N, (long long)cols);
    /* a budget: the kernel's sizes chosen for this (B, N, threads), refused when none fits */
    a.mem_budget = l->cfg.mem_budget;
    int rc = a.mem_budget && l->cfg.kernel->budget_params ? attn_budget_fit(l->cfg.kernel, &a, NULL) : 0;
    if (rc || (rc = attn_ctx_create(l->cfg.kernel, &a, &l->ctx)) != 0)
        return rc;
    if (l->cfg.rope) {
        l->rope_cs = attn_alloc(sizeof(float) * nn_rope_table_floats(N, l->D));
        if (!l->rope_cs) {
            attn_ctx_destroy(&l->ctx);
            return attn_fail(ATTN_ENOMEM, "attention block: cannot allocate the RoPE table for N=%lld", (long long)N);
        }
        nn_rope_table(l->rope_cs, N, l->D, nn_attn_rope_base(l));
    }
    size_t nq = (size_t)(B * N * l->cfg.H * l->D), nk = (size_t)(B * N * l->cfg.H_kv * l->D);
    if (nn_attn_lowp_alloc(&l->lowp, l->cfg.dtype, !l->cfg.eval_only, nq, nk)) {
        attn_ctx_destroy(&l->ctx);
        attn_free(l->rope_cs);
        l->rope_cs = NULL;
        return attn_fail(ATTN_ENOMEM, "attention block: cannot allocate the %s operands for N=%lld",
                         attn_dtype_names[l->cfg.dtype], (long long)N);
    }
    l->B = B, l->N = N, l->threads = threads, l->planned = 1;
    return 0;
}

void nn_attn_free(nn_attn *l)
{
    if (!l->planned)
        return;
    attn_ctx_destroy(&l->ctx);
    attn_free(l->rope_cs);
    l->rope_cs = NULL;
    attn_kv_cache_free(&l->kc);
    attn_kv_cache_free(&l->vc);
    nn_attn_lowp_free(&l->lowp);
    l->planned = 0;
}

#define N_ACTS 16

/* Sizes of the buffers (floats), in the order of nn_attn_acts. */
static void buffer_sizes(const nn_attn *l, int64_t B, int64_t N, size_t sz[N_ACTS])
{
    size_t T = (size_t)(B * N), H = (size_t)l->cfg.H, Hk = (size_t)l->cfg.H_kv, D = (size_t)l->D;
    size_t nb = nn_attn_has_beta(l) ? T * Hk : 0, ng = T * Hk * (size_t)l->gate_cols;
    size_t cq = l->cfg.short_conv ? T * H * D : 0, ck = l->cfg.short_conv ? T * Hk * D : 0;
    size_t nr = T * Hk * (size_t)l->router_cols;
    size_t s[N_ACTS] = {T * H * D, T * Hk * D, T * Hk * D, T * H * D, T * H, nb, nb, ng, ng, cq, ck, ck, cq, ck, ck, nr};
    memcpy(sz, s, sizeof s);
}

/* Binds the non-empty buffers of sizes sz onto buf (NULL for the empty ones). */
static int bind_buffers(nn_blob *buf, const size_t *sz, int n, float **out[])
{
    for (int i = 0; i < n; i++) {
        *out[i] = NULL;
        if (sz[i] && nn_blob_take(buf, sz[i], out[i], NULL) == SIZE_MAX)
            return ATTN_EINVAL;
    }
    return 0;
}

size_t nn_attn_acts_floats(const nn_attn *l, int64_t B, int64_t N)
{
    nn_attn_acts a;
    nn_blob cnt = {0};
    nn_attn_acts_bind(l, B, N, &cnt, &a);
    return cnt.used;
}

int nn_attn_acts_bind(const nn_attn *l, int64_t B, int64_t N, nn_blob *buf, nn_attn_acts *a)
{
    size_t sz[N_ACTS];
    buffer_sizes(l, B, N, sz);
    float **out[N_ACTS] = {&a->q,  &a->k,  &a->v,  &a->o,  &a->lse, &a->zb, &a->beta, &a->zg,
                           &a->gate, &a->qp, &a->kp, &a->vp, &a->zq, &a->zk, &a->zv, &a->zr};
    return bind_buffers(buf, sz, N_ACTS, out);
}

size_t nn_attn_scratch_floats(const nn_attn *l, int64_t B, int64_t N)
{
    nn_attn_scratch s;
    nn_blob cnt = {0};
    nn_attn_scratch_bind(l, B, N, &cnt, &s);
    return cnt.used;
}

int nn_attn_scratch_bind(const nn_attn *l, int64_t B, int64_t N, nn_blob *buf, nn_attn_scratch *s)
{
    size_t sz[N_ACTS], d[9];
    buffer_sizes(l, B, N, sz);
    d[0] = sz[0], d[1] = sz[1], d[2] = sz[2], d[3] = sz[3], d[4] = sz[5], d[5] = sz[7], d[6] = sz[9], d[7] = sz[15];
    d[8] = (size_t)(l->cfg.H * l->w_cols);
    float **out[9] = {&s->dq, &s->dk, &s->dv, &s->d_o, &s->dbeta, &s->dgate, &s->dpre, &s->drouter, &s->dw};
    return bind_buffers(buf, d, 9, out);
}

/* [B,heads,N,cols] view of a (B,N,heads,cols) buffer */
static attn_tensor view(float *p, int64_t B, int64_t heads, int64_t N, int64_t cols)
{
    return (attn_tensor){.data = p, .B = B, .H = heads, .N = N, .D = cols, .sb = N * heads * cols, .sh = cols,
                         .sn = heads * cols};
}


static attn_io block_io(const nn_attn *l, const nn_attn_acts *a)
{
    int64_t B = l->B, N = l->N, H = l->cfg.H, Hk = l->cfg.H_kv, D = l->D;
    return (attn_io){.q = view(a->q, B, H, N, D), .k = view(a->k, B, Hk, N, D), .v = view(a->v, B, Hk, N, D),
                     .o = view(a->o, B, H, N, D), .lse = a->lse, .beta = view(a->beta, B, Hk, N, 1),
                     .gate = view(a->gate, B, Hk, N, l->gate_cols), .router = view(a->zr, B, Hk, N, l->router_cols),
                     .w = weights_view(l, l->w)};
}

/* x into cache c in format t: allocated at the first forward of a plan (the
 * plan fixes the shape), overwritten by the later ones. */
static int cache_put(attn_kv_cache *c, attn_kv_dtype t, const attn_tensor *x)
{
    if (!c->data)
        return attn_kv_cache_make(c, t, x);
    attn_kv_cache_store(c, x);
    return 0;
}

static int check_planned(const nn_attn *l)
{
    return l->planned ? 0 : attn_fail(ATTN_EINVAL, "attention block: expected nn_attn_plan before use");
}

// x is (B,N,C), y is (B,N,C)
int nn_attn_forward(nn_attn *l, const float *x, const nn_attn_acts *a, float *y)
{
    int rc = check_planned(l);
    if (!rc)
        rc = bind_seq_len(l);
    if (rc)
        return rc;
    int64_t T = l->B * l->N, nb = nn_attn_has_beta(l) ? T * l->cfg.H_kv : 0, ng = T * l->cfg.H_kv * l->gate_cols;
    int th = l->threads;
    if (l->cfg.short_conv) {   /* projection -> conv -> SiLU, each of q, k, v */
        const nn_dense *d[3] = {&l->q, &l->k, &l->v};
        const nn_short_conv *cv[3] = {&l->cq, &l->ck, &l->cv};
        float *pre[3] = {a->qp, a->kp, a->vp}, *z[3] = {a->zq, a->zk, a->zv}, *out[3] = {a->q, a->k, a->v};
        for (int i = 0; i < 3; i++) {
            nn_dense_forward(d[i], x, pre[i], T, th);
            nn_short_conv_forward(cv[i], pre[i], z[i], out[i], l->B, l->N, th);
        }
    } else { /* one loop over row tiles for the three projections */
        const nn_dense *d[3] = {&l->q, &l->k, &l->v};
        float *out[3] = {a->q, a->k, a->v};
        nn_dense_forward_n(d, 3, x, out, T, th);
    }
    if (l->cfg.rope) {
        nn_rope_forward(a->q, l->rope_cs, l->B, l->N, l->cfg.H, l->D, th);
        nn_rope_forward(a->k, l->rope_cs, l->B, l->N, l->cfg.H_kv, l->D, th);
    }
    if (nb)
        nn_dense_forward(&l->beta, x, a->zb, T, th);
    if (ng)
        nn_dense_forward(&l->gate, x, a->zg, T, th);
    if (l->router_cols)
        nn_dense_forward(&l->router, x, a->zr, T, th);
#pragma omp parallel for num_threads(th) schedule(static) if (nb || ng)
    for (int64_t i = 0; i < (nb > ng ? nb : ng); i++) {
        if (i < nb)
            a->beta[i] = (float)nn_sigmoid(a->zb[i]);
        if (i < ng)
            a->gate[i] = (float)(nn_logsigmoid(a->zg[i]) / NN_ATTN_GATE_TEMP);
    }
    attn_io io = block_io(l, a);
    if (l->cfg.kv_dtype != ATTN_KV_FP32) { /* the kernel reads K and V as a cache stored in that format */
        if ((rc = cache_put(&l->kc, l->cfg.kv_dtype, &io.k)) || (rc = cache_put(&l->vc, l->cfg.kv_dtype, &io.v)))
            return rc;
        io.kc = l->kc, io.vc = l->vc;
    }
    nn_attn_lowp_inputs(&l->lowp, &io, 0); /* 16-bit operands: the kernel reads them rounded, writes O so */
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0;
    if ((rc = l->cfg.kernel->forward(&l->ctx, &io)) != 0)
        return rc;
    nn_attn_lowp_output(&l->lowp, &io);
    if (t0 > 0)
        nn_prof_add(NN_PROF_ATTN, nn_prof_now() - t0, l->cfg.kernel->flops(&l->ctx.args, ATTN_PASS_FWD));
    nn_dense_forward(&l->o, a->o, y, T, th);
    return 0;
}

// dy is (B,N,C); dx (B,N,C) += ...
int nn_attn_backward(nn_attn *l, const float *x, const nn_attn_acts *a, const float *dy,
                     const nn_attn_scratch *s, float *dx)
{
    int rc = check_planned(l);
    if (!rc)
        rc = bind_seq_len(l);
    if (rc)
        return rc;
    if (!l->cfg.kernel->backward)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' has no backward: it can be evaluated but not trained",
                         l->cfg.kernel->name);
    int64_t B = l->B, N = l->N, T = B * N, H = l->cfg.H, Hk = l->cfg.H_kv, D = l->D;
    int64_t nb = nn_attn_has_beta(l) ? T * Hk : 0, ng = T * Hk * l->gate_cols;
    int th = l->threads;
    size_t fq = sizeof(float) * (size_t)(T * H * D), fk = sizeof(float) * (size_t)(T * Hk * D);
    const nn_dense *o = &l->o;
    nn_dense_backward_n(&o, 1, a->o, &dy, s->d_o, 0, T, th); /* d_o overwritten: no zeroing pass */
    /* zeroed so that kernels that accumulate and kernels that overwrite agree */
    float *dqkv[3] = {s->dq, s->dk, s->dv};
    size_t dqkv_bytes[3] = {fq, fk, fk};
    nn_zero_n(dqkv, dqkv_bytes, 3, th);
    if (nb)
        memset(s->dbeta, 0, sizeof(float) * (size_t)nb);
    if (ng)
        memset(s->dgate, 0, sizeof(float) * (size_t)ng);
    attn_io io = block_io(l, a);
    size_t nr = (size_t)(T * Hk * l->router_cols);
    if (nr)
        memset(s->drouter, 0, sizeof(float) * nr);
    attn_grads g = {.d_o = view(s->d_o, B, H, N, D), .dq = view(s->dq, B, H, N, D), .dk = view(s->dk, B, Hk, N, D),
                    .dv = view(s->dv, B, Hk, N, D), .dbeta = view(s->dbeta, B, Hk, N, 1),
                    .dgate = view(s->dgate, B, Hk, N, l->gate_cols), .drouter = view(s->drouter, B, Hk, N, l->router_cols),
                    .dw = weights_view(l, s->dw)};
    nn_attn_lowp_inputs(&l->lowp, &io, 1); /* rounded again from the fp32 activations: the forward's bits */
    nn_attn_lowp_grads(&l->lowp, &g);
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0;
    if ((rc = l->cfg.kernel->backward(&l->ctx, &io, &g)) != 0)
        return rc;
    nn_attn_lowp_grads_out(&l->lowp, &g);
    if (t0 > 0)
        nn_prof_add(NN_PROF_ATTN, nn_prof_now() - t0, l->cfg.kernel->flops(&l->ctx.args, ATTN_PASS_BWD));
    if (l->cfg.rope) {
        nn_rope_backward(s->dq, l->rope_cs, B, N, H, D, th);
        nn_rope_backward(s->dk, l->rope_cs, B, N, Hk, D, th);
    }
    /* through the activations, in place: dz_b = dbeta b (1 - b), dz_g = dgate sigmoid(-z) / 16 */
#pragma omp parallel for num_threads(th) schedule(static) if (nb || ng)
    for (int64_t i = 0; i < (nb > ng ? nb : ng); i++) {
        if (i < nb)
            s->dbeta[i] *= a->beta[i] * (1.0f - a->beta[i]);
        if (i < ng)
            s->dgate[i] *= (float)(nn_sigmoid(-a->zg[i]) / NN_ATTN_GATE_TEMP);
    }
    const nn_dense *d[3] = {&l->q, &l->k, &l->v};
    float *dout[3] = {s->dq, s->dk, s->dv};
    if (l->cfg.short_conv) { /* through SiLU and the conv (dz in place), then the projection */
        const nn_short_conv *cv[3] = {&l->cq, &l->ck, &l->cv};
        const float *pre[3] = {a->qp, a->kp, a->vp}, *z[3] = {a->zq, a->zk, a->zv};
        for (int i = 0; i < 3; i++) {
            memset(s->dpre, 0, sizeof(float) * (size_t)(T * cv[i]->C));
            nn_short_conv_backward(cv[i], pre[i], z[i], dout[i], dout[i], s->dpre, B, N, th);
            nn_dense_backward(d[i], x, s->dpre, dx, T, th);
        }
    } else {
        const float *dy3[3] = {s->dq, s->dk, s->dv};
        nn_dense_backward_n(d, 3, x, dy3, dx, 1, T, th);
    }
    if (nb)
        nn_dense_backward(&l->beta, x, s->dbeta, dx, T, th);
    if (ng)
        nn_dense_backward(&l->gate, x, s->dgate, dx, T, th);
    if (nr)
        nn_dense_backward(&l->router, x, s->drouter, dx, T, th);
    for (int64_t i = 0; i < H * l->w_cols; i++) /* kernels write dw; parameter gradients accumulate */
        l->dw[i] += s->dw[i];
    return 0;
}

int nn_attn_train_update(nn_attn *l, const nn_attn_acts *a)
{
    if (!l->cfg.kernel->train_update || !l->w_cols)
        return 0;
    int rc = check_planned(l);
    if (rc)
        return rc;
    attn_io io = block_io(l, a);
    attn_tensor w = weights_view(l, l->w);
    return l->cfg.kernel->train_update(&l->ctx.args, &io, &w);
}
