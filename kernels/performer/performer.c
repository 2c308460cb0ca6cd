/* `performer`: FAVOR+ attention (Choromanski et al. 2020; docs/kernels/performer.md),
 * or with kernel=relu its generalized ReLU attention. The random features are
 * drawn once per context from (seed, draw) and shared by every head (as the
 * authors' fast_attention code shares one projection per attention layer);
 * the feature maps (performer_map.c, performer_relu.c) plug into the chunked
 * linear-attention core of kernels/linear/, which runs the causal and
 * non-causal forms and the backward. */
#include "performer_internal.h"

#include <stdlib.h>
#include <string.h>

/* Rows per chunk: the C x C products of the causal form stay small beside
 * the m x Dv state products at the default m = 256. Not tuned: 16 to 128
 * timed alike within the noise of a shared 2-core machine (N = 4096, D = 64). */
#define PF_DEFAULT_CHUNK 64

static const char *const pf_kernels[] = {"softmax", "relu", NULL};

static const opt_def performer_params[] = {
    {.name = "kernel", .type = OPT_ENUM, .names = pf_kernels, .def = PF_SOFTMAX,
     .help = "softmax: FAVOR+ positive features; relu: generalized attention relu(W x) + 1e-3 (LRA's default)"},
    {.name = "features", .type = OPT_INT, .def = 256, .lo = 0, .hi = PF_MAX_FEATURES,
     .help = "m random features (the paper's choice about D ln D; 256 at D = 64); 0 with kernel=relu: "
             "no projection, relu(x) + 1e-3 (LRA's 'deterministic' features)"},
    {.name = "orthogonal", .type = OPT_INT, .def = 1, .lo = 0, .hi = 1,
     .help = "1: orthogonal blocks with chi_D row norms; 0: i.i.d. Gaussian rows"},
    {.name = "seed", .type = OPT_INT, .def = 0, .lo = 0, .hi = 9007199254740992.0, .flags = OPT_RECORDED,
     .help = "seed of the feature draw"},
    {.name = "draw", .type = OPT_INT, .def = 0, .lo = 0, .hi = 9007199254740992.0, .flags = OPT_RECORDED,
     .help = "index of the draw of this seed (a redraw is a new index)"},
    {.name = "chunk", .type = OPT_INT, .def = PF_DEFAULT_CHUNK, .lo = 1, .hi = 1024,
     .help = "rows per chunk of the causal form"},
    {0},
};

int pf_params_read(const attn_args *a, pf_params *p)
{
    int rc = attn_params_check(a, "performer", performer_params);
    if (rc)
        return rc;
    p->kernel = attn_param_enum(a, performer_params, "kernel", &rc);
    p->m = attn_param_int(a, performer_params, "features", &rc);
    p->orthogonal = (int)attn_param_int(a, performer_params, "orthogonal", &rc);
    p->seed = (uint64_t)attn_param_int(a, performer_params, "seed", &rc);
    p->draw = (uint64_t)attn_param_int(a, performer_params, "draw", &rc);
    p->C = attn_param_int(a, performer_params, "chunk", &rc);
    if (!rc && p->m == 0 && p->kernel != PF_RELU)
        return attn_fail(ATTN_EINVAL, "performer: param features: expected >= 1 with kernel=softmax (0, no "
                                      "projection, exists for kernel=relu only), found 0");
    return rc;
}

int pf_cfg(lin_cfg *cfg, const attn_args *a, const pf_params *p, const pf_features *f)
{
    memset(cfg, 0, sizeof *cfg);
    if (p->kernel == PF_RELU)
        pf_relu_map(&cfg->fm, f, a->D);
    else
        pf_maps(&cfg->fm, &cfg->qm, f, attn_scale(a));
    cfg->eps = PF_EPS;
    cfg->C = p->C;
    return lin_cfg_check(cfg, a, "performer");
}

int pf_setup_make(pf_setup *s, const attn_args *a)
{
    int rc = pf_params_read(a, &s->p);
    if (rc)
        return rc;
    s->f = (pf_features){.m = 0, .D = a->D}; /* features=0: no projection, nothing to draw */
    if (s->p.m && (rc = pf_draw(&s->f, s->p.m, a->D, s->p.orthogonal, s->p.seed, s->p.draw)))
        return rc;
    if ((rc = pf_cfg(&s->cfg, a, &s->p, &s->f)))
        pf_free(&s->f);
    return rc;
}

void pf_setup_free(pf_setup *s) { pf_free(&s->f); }

static void performer_fini(attn_ctx *ctx)
{
    if (ctx->priv)
        pf_setup_free(ctx->priv);
    free(ctx->priv);
    ctx->priv = NULL;
}

/* The context keeps its draw (a pf_setup) for every forward and backward. */
static int performer_init(attn_ctx *ctx, const attn_args *a)
{
    pf_setup *s = malloc(sizeof *s);
    if (!s)
        return attn_fail(ATTN_ENOMEM, "performer: out of memory for its context");
    int rc = pf_setup_make(s, a);
    if (rc) {
        free(s);
        return rc;
    }
    ctx->priv = s;
    lin_init(ctx, &s->cfg);
    return 0;
}

static int performer_forward(attn_ctx *ctx, const attn_io *io)
{
    return lin_forward(ctx, &((const pf_setup *)ctx->priv)->cfg, io);
}

static int performer_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return lin_backward(ctx, &((const pf_setup *)ctx->priv)->cfg, io, g);
}

/* The linear-attention products with F = m (D without a projection), plus the random projections of
 * queries (per query head) and keys (per KV head), 2 N D m each; backward
 * 2.5 x forward as everywhere. */
static double performer_flops(const attn_args *a, attn_pass pass)
{
    pf_params p;
    if (pf_params_read(a, &p))
        return 0;
    double proj = 0;
    for (int64_t b = 0; b < a->B; b++)
        proj += 2.0 * (double)attn_q_len(a, b) * (double)(a->D * p.m) * (double)(a->H + a->H_kv);
    return lin_flops(a, pass, pf_feature_count(&p, a->D), p.C, 0) + (pass == ATTN_PASS_FWD ? proj : 2.5 * proj);
}

static size_t performer_state_bytes(const attn_args *a)
{
    pf_params p;
    return pf_params_read(a, &p) ? 0 : lin_state_bytes(a, pf_feature_count(&p, a->D), 0);
}

const attn_kernel attn_kernel_performer = {
    .name = "performer",
    .family = "performer",
    .reference = "Choromanski et al. 2020 (Rethinking Attention with Performers), FAVOR+",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = performer_params,
    .notes = "softmax: positive features of x = q sqrt(scale), per-row stabilisers cancel; relu: relu(W q) + 1e-3; "
             "one draw of W per (seed, draw), shared by heads and layers, fixed over training; eps = 1e-30",
    .init = performer_init,
    .forward = performer_forward,
    .backward = performer_backward,
    .flops = performer_flops,
    .bytes = lin_bytes,
    .state_bytes = performer_state_bytes,
    .fini = performer_fini,
    .inputs = 0,
    .ref_forward = pf_ref_forward,
    .ref_view = pf_ref_view,
    .check_params = "features=64", /* central differences: two double forwards per input element */
};
