/* Model construction: config checks, the parameter blob, initialisation, the
 * parameter table (checkpoints, weight-decay ranges) and the description. */
#include "model.h"

#include "halt.h"
#include "kernels/core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *layer_kernel(const nn_model_cfg *c, int64_t l, int *rc)
{
    const char *name = c->kernels[c->n_kernels > 1 ? l : 0];
    const attn_kernel *k = attn_find_kernel(name);
    if (!k)
        *rc = ATTN_EINVAL; /* attn_find_kernel recorded the message */
    return k;
}

static int cfg_check(const nn_model_cfg *c)
{
    if (c->layers < 1 || c->layers > NN_MAX_LAYERS)
        return attn_fail(ATTN_EINVAL, "model: layers: expected 1..%d, found %lld", NN_MAX_LAYERS, (long long)c->layers);
    if (c->n_kernels != 1 && c->n_kernels != c->layers)
        return attn_fail(ATTN_EINVAL, "model: expected one kernel or one per layer (%lld), found %d",
                         (long long)c->layers, c->n_kernels);
    if (c->d_model < 1 || c->heads < 1 || c->d_model % c->heads)
        return attn_fail(ATTN_EINVAL, "model: expected d_model a multiple of heads, found d_model=%lld heads=%lld",
                         (long long)c->d_model, (long long)c->heads);
    if (c->head == NN_HEAD_REGRESS && (c->in_dim < 1 || c->vocab != 1 || !c->causal))
        return attn_fail(ATTN_EINVAL, "model: the regress head needs in_dim >= 1, vocab 1 (one token, the read-in's "
                         "bias) and causal attention, found in_dim=%lld vocab=%lld causal=%d", (long long)c->in_dim,
                         (long long)c->vocab, c->causal);
    if ((c->vocab < 2 && c->head != NN_HEAD_REGRESS) || c->max_len < 1 || c->loops < 1 || c->loops > NN_MAX_LOOPS ||
        c->mlp < 0)
        return attn_fail(ATTN_EINVAL, "model: expected vocab >= 2, max_len >= 1, loops 1..%d, mlp >= 0", NN_MAX_LOOPS);
    if (c->head != NN_HEAD_LM && c->head != NN_HEAD_REGRESS && c->n_classes < 2)
        return attn_fail(ATTN_EINVAL, "model: a classifier needs n_classes >= 2, found %lld", (long long)c->n_classes);
    if (c->head != NN_HEAD_REGRESS && c->in_dim)
        return attn_fail(ATTN_EINVAL, "model: in_dim: only the regress head reads float inputs, found %lld",
                         (long long)c->in_dim);
    if (c->head == NN_HEAD_LM && !c->causal)
        return attn_fail(ATTN_EINVAL, "model: the lm head needs causal attention (a token must not see its target)");
    if (c->head == NN_HEAD_TWOTOWER && c->tower_mlp < 2)
        return attn_fail(ATTN_EINVAL, "model: twotower: tower_mlp: expected >= 2, found %lld", (long long)c->tower_mlp);
    if ((unsigned)c->gating > NN_GATING_GTRXL)
        return attn_fail(ATTN_EINVAL, "model: gating: expected residual or gtrxl, found %d", (int)c->gating);
    if ((unsigned)c->pos > NN_POS_NONE || (unsigned)c->pool > NN_POOL_MEAN || (unsigned)c->variant > NN_VARIANT_HMT)
        return attn_fail(ATTN_EINVAL, "model: expected a variant, pos and pool of model.h, found %d, %d, %d",
                         (int)c->variant, (int)c->pos, (int)c->pool);
    if ((unsigned)c->halting > NN_HALTING_ACT)
        return attn_fail(ATTN_EINVAL, "model: halting: expected none or act, found %d", (int)c->halting);
    if (c->halting && c->variant != NN_VARIANT_LOOPED)
        return attn_fail(ATTN_EINVAL, "model: --halting act: expected --model looped (it halts the loops), found "
                         "--model %s", nn_variant_names[c->variant][0] ? nn_variant_names[c->variant] : "(the task's)");
    if (!c->halting && c->ponder_cost != 0 && c->ponder_cost != NN_PONDER_COST_DEFAULT)
        return attn_fail(ATTN_EINVAL, "model: --ponder-cost %g: expected --halting act (the cost is of its ponder steps)",
                         c->ponder_cost);
    if (!(c->ponder_cost >= 0))
        return attn_fail(ATTN_EINVAL, "model: ponder_cost: expected >= 0, found %g", c->ponder_cost);
    if (c->short_conv < 0 || c->short_conv > NN_SHORT_CONV_MAX)
        return attn_fail(ATTN_EINVAL, "model: short_conv: expected 0..%d, found %d", NN_SHORT_CONV_MAX, c->short_conv);
    if (c->variant == NN_VARIANT_FOLDED && (c->head != NN_HEAD_LM || c->fold_segment < 1 || c->fold_buffer < 0))
        return attn_fail(ATTN_EINVAL, "model: folded: expected the lm head, fold_segment >= 1 and fold_buffer >= 0, "
                         "found head %d, %lld, %lld", (int)c->head, (long long)c->fold_segment,
                         (long long)c->fold_buffer);
    if (c->variant == NN_VARIANT_HMT &&
        (c->head != NN_HEAD_LM || c->hmt_segment < 1 || c->hmt_summary < 0 || c->hmt_summary > c->hmt_segment ||
         c->hmt_sensory < 0 || c->hmt_sensory > c->hmt_segment || c->hmt_memories < 0 || c->hmt_unroll < 1 ||
         c->hmt_unroll > 2))
        return attn_fail(ATTN_EINVAL, "model: hmt: expected the lm head, segment >= 1, 0 <= summary <= segment, "
                         "0 <= sensory <= segment, memories >= 0 and unroll 1 or 2, found head %d, %lld, %lld, %lld, "
                         "%lld, %lld", (int)c->head, (long long)c->hmt_segment, (long long)c->hmt_summary,
                         (long long)c->hmt_sensory, (long long)c->hmt_memories, (long long)c->hmt_unroll);
    attn_mask mk = nn_model_mask(c);
    if (c->causal && !attn_mask_is_causal(&mk))
        return attn_fail(ATTN_EINVAL, "model: mask: the lm head predicts the next token, expected a causal mask, found '%s'",
                         c->mask);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return attn_fail(ATTN_EINVAL, "model: dropout: expected [0, 1), found %g", c->dropout);
    return 0;
}

/* Binds every layer onto blob (counting when blob->data is NULL). */
static int bind_all(nn_model *m, nn_blob *blob)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t C = c->d_model;
    /* folded: positions count from the start of a window, never past it */
    int64_t positions = c->variant == NN_VARIANT_FOLDED ? nn_fold_window(c)
                        : c->variant == NN_VARIANT_HMT ? nn_hmt_window(c) : c->max_len; /* hmt: the same */
    int rc = nn_embed_bind(&m->emb, c->vocab, C, c->pos == NN_POS_LEARNED ? positions : 0, blob);
    if (!rc && c->head == NN_HEAD_REGRESS)
        rc = nn_dense_bind(&m->readin, c->in_dim, C, 0, blob);
    for (int64_t l = 0; !rc && l < c->layers; l++) {
        nn_block *b = &m->blk[l];
        nn_attn_cfg ac = {.C = C, .H = c->heads, .H_kv = c->heads_kv ? c->heads_kv : c->heads,
                          .kernel = layer_kernel(c, l, &rc), .params = c->kparams,
                          .rope = c->pos == NN_POS_ROPE, .eval_only = c->eval_only,
                          .short_conv = c->short_conv, .max_len = c->max_len, .kv_dtype = c->eval_kv_dtype,
                          .dtype = c->eval_dtype != ATTN_DT_FP32 ? c->eval_dtype : c->attn_dtype,
                          .mem_budget = c->eval_mem_budget};
        if (rc)
            break;
        ac.mask = nn_model_mask(c);
        if ((rc = nn_norm_bind(&b->n1, C, c->rms, blob)) || (rc = nn_attn_bind(&b->attn, &ac, blob)))
            break;
        if (c->mlp && ((rc = nn_norm_bind(&b->n2, C, c->rms, blob)) || (rc = nn_mlp_bind(&b->mlp, C, c->mlp, blob))))
            break;
        if (c->gating && ((rc = nn_gate_bind(&b->g1, C, blob)) || (c->mlp && (rc = nn_gate_bind(&b->g2, C, blob)))))
            break;
    }
    if (!rc)
        rc = nn_norm_bind(&m->nf, C, c->rms, blob);
    if (!rc && c->head == NN_HEAD_CLASSIFY)
        rc = nn_dense_bind(&m->h1, C, c->n_classes, 1, blob);
    if (!rc && c->head == NN_HEAD_LM)
        rc = nn_dense_bind(&m->h1, C, c->vocab, 0, blob);
    if (!rc && c->head == NN_HEAD_REGRESS)
        rc = nn_dense_bind(&m->h1, C, 1, 1, blob);
    if (!rc && c->head == NN_HEAD_TWOTOWER && !(rc = nn_dense_bind(&m->h1, 4 * C, c->tower_mlp, 1, blob)) &&
        !(rc = nn_dense_bind(&m->h2, c->tower_mlp, c->tower_mlp / 2, 1, blob)))
        rc = nn_dense_bind(&m->h3, c->tower_mlp / 2, 2, 1, blob);
    if (!rc && c->halting) /* last: the other tensors keep the offsets of the model without halting */
        rc = nn_dense_bind(&m->halt, C, 1, 1, blob);
    if (!rc && c->variant == NN_VARIANT_HMT && !(rc = nn_dense_bind(&m->hmt_q, C, C, 0, blob)) &&
        !(rc = nn_dense_bind(&m->hmt_k, C, C, 0, blob))) {
        size_t off = nn_blob_take(blob, (size_t)C, &m->hmt_prompt, &m->hmt_dprompt);
        rc = off == SIZE_MAX ? ATTN_ENOMEM : 0;
        m->off_hmt_prompt = off;
    }
    return rc;
}

int nn_model_init(nn_model *m, const nn_model_cfg *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    int rc = cfg_check(cfg);
    nn_blob count = {0};
    if (rc || (rc = bind_all(m, &count)) != 0)
        return rc;
    m->n_params = count.used;
    m->params = attn_alloc(sizeof(float) * m->n_params);
    m->grads = attn_alloc(sizeof(float) * m->n_params);
    if (!m->params || !m->grads) {
        nn_model_free(m);
        return attn_fail(ATTN_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    }
    memset(m->params, 0, sizeof(float) * m->n_params);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_blob blob = {.data = m->params, .grad = m->grads, .cap = m->n_params};
    if ((rc = bind_all(m, &blob)) != 0) {
        nn_model_free(m);
        return rc;
    }
    attn_rng r;
    attn_rng_seed(&r, seed);
    nn_embed_init(&m->emb, &r);
    if (cfg->head == NN_HEAD_REGRESS)
        nn_dense_init(&m->readin, &r);
    for (int64_t l = 0; l < cfg->layers; l++) {
        nn_norm_init(&m->blk[l].n1);
        nn_attn_init(&m->blk[l].attn, &r);
        if (cfg->mlp) {
            nn_norm_init(&m->blk[l].n2);
            nn_mlp_init(&m->blk[l].mlp, &r);
        }
        if (cfg->gating)
            nn_gate_init(&m->blk[l].g1, &r);
        if (cfg->gating && cfg->mlp)
            nn_gate_init(&m->blk[l].g2, &r);
    }
    nn_norm_init(&m->nf);
    nn_dense_init(&m->h1, &r);
    if (cfg->head == NN_HEAD_TWOTOWER) {
        nn_dense_init(&m->h2, &r);
        nn_dense_init(&m->h3, &r);
    }
    if (cfg->halting) { /* last: the other weights are those of the same model without halting */
        nn_dense_init(&m->halt, &r);
        m->halt.b[0] = NN_ACT_BIAS_INIT;
    }
    if (cfg->variant == NN_VARIANT_HMT) { /* last: the backbone's weights are those of the plain lm's draw */
        nn_dense_init(&m->hmt_q, &r);
        nn_dense_init(&m->hmt_k, &r);
        nn_fill_normal(m->hmt_prompt, (size_t)cfg->d_model, 0.02f, &r); /* a token embedding's scale */
    }
    return 0;
}

int nn_model_init_shared(nn_model *m, const nn_model *owner)
{
    memset(m, 0, sizeof *m);
    m->cfg = owner->cfg;
    m->n_params = owner->n_params, m->shared = 1;
    nn_blob blob = {.data = owner->params, .grad = owner->grads, .cap = owner->n_params};
    int rc = bind_all(m, &blob);
    m->params = owner->params, m->grads = owner->grads;
    return rc;
}

int64_t nn_fold_window(const nn_model_cfg *c) { return c->fold_segment + c->fold_buffer; }

/* without memories there is no recalled row and no memory token: the window
 * (and learned positions) of the lm on segments */
int64_t nn_hmt_window(const nn_model_cfg *c)
{
    return c->hmt_sensory + c->hmt_segment + (c->hmt_memories > 0 ? 2 : 0);
}

size_t nn_hmt_state_floats(const nn_model_cfg *c) { return (size_t)((c->hmt_memories + c->hmt_sensory) * c->d_model); }

/* ---------------------------------------------------------------- parameter table */

typedef struct {
    nn_param_info *info;
    int n, max;
} table;

static void add(table *t, const char *name, size_t off, int64_t rows, int64_t cols, int decay)
{
    if (t->info && t->n < t->max) {
        nn_param_info *p = &t->info[t->n];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->offset = off, p->count = (size_t)(rows * cols), p->rows = rows, p->cols = cols, p->decay = decay;
    }
    t->n++;
}

static void add_dense(table *t, const char *name, const nn_dense *d)
{
    char s[48];
    snprintf(s, sizeof s, "%s.w", name);
    add(t, s, d->off_w, d->out, d->in, 1);
    if (d->bias) {
        snprintf(s, sizeof s, "%s.b", name);
        add(t, s, d->off_b, 1, d->out, 0);
    }
}

static void add_norm(table *t, const char *name, const nn_norm *n)
{
    char s[48];
    snprintf(s, sizeof s, "%s.g", name);
    add(t, s, n->off_g, 1, n->C, 0);
    if (!n->rms) {
        snprintf(s, sizeof s, "%s.b", name);
        add(t, s, n->off_b, 1, n->C, 0);
    }
}

static void add_gate(table *t, int64_t layer, int which, const nn_gate *g)
{
    static const char *const maps[] = {"wr", "ur", "wz", "uz", "wg", "ug"};
    const nn_dense *d[] = {&g->wr, &g->ur, &g->wz, &g->uz, &g->wg, &g->ug};
    char s[40];
    for (int i = 0; i < 6; i++) {
        snprintf(s, sizeof s, "l%lld.gate%d.%s", (long long)layer, which, maps[i]);
        add_dense(t, s, d[i]);
    }
}

int nn_model_params(const nn_model *m, nn_param_info *info, int max)
{
    table t = {info, 0, max};
    add(&t, "wte", m->emb.off_wte, m->emb.V, m->emb.C, 0);
    if (m->emb.Nmax)
        add(&t, "wpe", m->emb.off_wpe, m->emb.Nmax, m->emb.C, 0);
    if (m->cfg.head == NN_HEAD_REGRESS)
        add_dense(&t, "readin", &m->readin);
    for (int64_t l = 0; l < m->cfg.layers; l++) {
        const nn_block *b = &m->blk[l];
        char s[40];
        static const char *const parts[] = {"q", "k", "v", "o", "beta", "gate"};
        const nn_dense *d[] = {&b->attn.q, &b->attn.k, &b->attn.v, &b->attn.o, &b->attn.beta, &b->attn.gate};
        snprintf(s, sizeof s, "l%lld.n1", (long long)l);
        add_norm(&t, s, &b->n1);
        for (int i = 0; i < 6; i++)
            if (d[i]->in) {
                snprintf(s, sizeof s, "l%lld.attn.%s", (long long)l, parts[i]);
                add_dense(&t, s, d[i]);
            }
        static const char *const convs[] = {"conv_q", "conv_k", "conv_v"};
        const nn_short_conv *cv[] = {&b->attn.cq, &b->attn.ck, &b->attn.cv};
        for (int i = 0; m->cfg.short_conv && i < 3; i++) { /* (channels, K) filters, decayed like weights */
            snprintf(s, sizeof s, "l%lld.attn.%s.w", (long long)l, convs[i]);
            add(&t, s, cv[i]->off_w, cv[i]->C, cv[i]->K, 1);
        }
        if (b->attn.router_cols) {
            snprintf(s, sizeof s, "l%lld.attn.router", (long long)l);
            add_dense(&t, s, &b->attn.router);
        }
        if (b->attn.w_cols) { /* the kernel's own weights (GAM: bank, taps, gates), decayed like weights;
                                 not those it updates itself (routing's centroids: train_update) */
            snprintf(s, sizeof s, "l%lld.attn.kernel_w", (long long)l);
            add(&t, s, b->attn.off_w, b->attn.cfg.H, b->attn.w_cols, !b->attn.cfg.kernel->train_update);
        }
        if (m->cfg.mlp) {
            snprintf(s, sizeof s, "l%lld.n2", (long long)l);
            add_norm(&t, s, &b->n2);
            snprintf(s, sizeof s, "l%lld.mlp.fc", (long long)l);
            add_dense(&t, s, &b->mlp.fc);
            snprintf(s, sizeof s, "l%lld.mlp.proj", (long long)l);
            add_dense(&t, s, &b->mlp.proj);
        }
        for (int g = 0; m->cfg.gating && g < (m->cfg.mlp ? 2 : 1); g++)
            add_gate(&t, l, g + 1, g ? &b->g2 : &b->g1);
    }
    add_norm(&t, "nf", &m->nf);
    add_dense(&t, "head1", &m->h1);
    if (m->cfg.head == NN_HEAD_TWOTOWER) {
        add_dense(&t, "head2", &m->h2);
        add_dense(&t, "head3", &m->h3);
    }
    if (m->cfg.halting)
        add_dense(&t, "halt", &m->halt);
    if (m->cfg.variant == NN_VARIANT_HMT) {
        add_dense(&t, "hmt.q", &m->hmt_q);
        add_dense(&t, "hmt.k", &m->hmt_k);
        add(&t, "hmt.prompt", m->off_hmt_prompt, 1, m->cfg.d_model, 0);
    }
    return t.n;
}

const char *nn_model_padding(const nn_model_cfg *c)
{
    attn_mask mk = nn_model_mask(c);
    int causal = attn_mask_is_causal(&mk);
    for (int64_t l = 0; !causal && l < c->layers; l++) {
        int rc = 0;
        const attn_kernel *k = layer_kernel(c, l, &rc);
        if (!k || !(k->flags & ATTN_PADDED))
            return "attended";
    }
    return "masked";
}

void nn_model_describe(const nn_model_cfg *c, char *buf, size_t n)
{
    int k = snprintf(buf, n, "%s(L=%lld,d=%lld,H=%lld", nn_variant_names[c->variant], (long long)c->layers, (long long)c->d_model,
                     (long long)c->heads);
    if (c->heads_kv && c->heads_kv != c->heads)
        k += snprintf(buf + k, n - (size_t)k, ",Hkv=%lld", (long long)c->heads_kv);
    k += snprintf(buf + k, n - (size_t)k, ",mlp=%lld,pos=%s", (long long)c->mlp, nn_pos_names[c->pos]);
    if (c->head != NN_HEAD_LM && c->head != NN_HEAD_REGRESS)
        k += snprintf(buf + k, n - (size_t)k, ",pool=%s", nn_pool_names[c->pool]);
    if (c->head == NN_HEAD_REGRESS)
        k += snprintf(buf + k, n - (size_t)k, ",in=%lld", (long long)c->in_dim);
    if (c->loops > 1)
        k += snprintf(buf + k, n - (size_t)k, ",loops=%d", c->loops);
    if (c->short_conv)
        k += snprintf(buf + k, n - (size_t)k, ",conv=%d", c->short_conv);
    if (c->dropout > 0)
        k += snprintf(buf + k, n - (size_t)k, ",drop=%g", c->dropout);
    if (c->gating)
        k += snprintf(buf + k, n - (size_t)k, ",gating=%s", nn_gating_names[c->gating]);
    if (c->variant == NN_VARIANT_FOLDED)
        k += snprintf(buf + k, n - (size_t)k, ",segment=%lld,buffer=%lld", (long long)c->fold_segment,
                      (long long)c->fold_buffer);
    if (c->variant == NN_VARIANT_HMT)
        k += snprintf(buf + k, n - (size_t)k, ",segment=%lld,summary=%lld,sensory=%lld,memories=%lld,unroll=%lld",
                      (long long)c->hmt_segment, (long long)c->hmt_summary, (long long)c->hmt_sensory,
                      (long long)c->hmt_memories, (long long)c->hmt_unroll);
    if (c->halting)
        k += snprintf(buf + k, n - (size_t)k, ",halting=act,tau=%g", c->ponder_cost);
    snprintf(buf + k, n - (size_t)k, ")");
}
