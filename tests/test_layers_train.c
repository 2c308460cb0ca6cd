/* The layers compose into a trainable model: a one-block causal LM
 *   tokens -> embed (+ learned positions) -> x + attn(LN(x)) -> h + mlp(LN(h))
 *   -> LN -> dense (C -> V) -> token cross-entropy
 * with every buffer planned up front, gradients zeroed once per step and
 * accumulated by the backwards, fits a fixed batch with plain SGD. */
#include "kernels/flash/flash.h"
#include "models/layers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, N = 8, V = 7, C = 16, F = 32, T = B * N };

typedef struct {
    nn_embed emb;
    nn_norm ln1, ln2, lnf;
    nn_attn attn;
    nn_mlp mlp;
    nn_dense head;
} tiny_lm;

static int tiny_bind(tiny_lm *m, const nn_attn_cfg *cfg, nn_blob *b)
{
    int rc = nn_embed_bind(&m->emb, V, C, N, b);
    rc = rc ? rc : nn_norm_bind(&m->ln1, C, 0, b);
    rc = rc ? rc : nn_attn_bind(&m->attn, cfg, b);
    rc = rc ? rc : nn_norm_bind(&m->ln2, C, 1, b);
    rc = rc ? rc : nn_mlp_bind(&m->mlp, C, F, b);
    rc = rc ? rc : nn_norm_bind(&m->lnf, C, 0, b);
    return rc ? rc : nn_dense_bind(&m->head, C, V, 1, b);
}

/* activations (T rows each) */
typedef struct {
    float x[T * C], n1[T * C], a[T * C], h[T * C], n2[T * C], fh[T * F], fa[T * F], m[T * C], r[T * C];
    float nf[T * C], logits[T * V], mean[3][T], rstd[3][T], row_loss[T];
    /* gradients of the activations and scratch */
    float dx[T * C], dn1[T * C], dh[T * C], dn2[T * C], dr[T * C], dnf[T * C], dlogits[T * V], scratch[T * F];
} tiny_acts;

static double tiny_step(tiny_lm *m, tiny_acts *s, const nn_attn_acts *aa, const nn_attn_scratch *as,
                        const int32_t *tok, const int32_t *tgt, nn_blob *p, float lr)
{
    int th = 2;
    double loss;
    int64_t nv;
    // forward
    cr_assert_eq(nn_embed_forward(&m->emb, tok, s->x, B, N, th), 0);
    nn_norm_forward(&m->ln1, s->x, s->n1, s->mean[0], s->rstd[0], T, th);
    cr_assert_eq(nn_attn_forward(&m->attn, s->n1, aa, s->a), 0, "%s", attn_last_error());
    for (int i = 0; i < T * C; i++)
        s->h[i] = s->x[i] + s->a[i];
    nn_norm_forward(&m->ln2, s->h, s->n2, NULL, s->rstd[1], T, th);
    nn_mlp_forward(&m->mlp, s->n2, s->fh, s->fa, s->m, T, th);
    for (int i = 0; i < T * C; i++)
        s->r[i] = s->h[i] + s->m[i];
    nn_norm_forward(&m->lnf, s->r, s->nf, s->mean[2], s->rstd[2], T, th);
    nn_dense_forward(&m->head, s->nf, s->logits, T, th);
    cr_assert_eq(nn_xent_tokens(s->logits, tgt, T, V, s->dlogits, s->row_loss, &loss, &nv, th), 0);
    // backward: zero the gradients once, then every backward accumulates
    memset(p->grad, 0, sizeof(float) * p->used);
    float *zero[] = {s->dx, s->dn1, s->dh, s->dn2, s->dr, s->dnf};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        memset(zero[i], 0, sizeof(float) * T * C);
    nn_dense_backward(&m->head, s->nf, s->dlogits, s->dnf, T, th);
    nn_norm_backward(&m->lnf, s->r, s->mean[2], s->rstd[2], s->dnf, s->dr, T, th);
    memcpy(s->dh, s->dr, sizeof s->dh);   /* residual */
    nn_mlp_backward(&m->mlp, s->n2, s->fh, s->fa, s->dr, s->scratch, s->dn2, T, th);
    nn_norm_backward(&m->ln2, s->h, NULL, s->rstd[1], s->dn2, s->dh, T, th);
    memcpy(s->dx, s->dh, sizeof s->dx);   /* residual */
    cr_assert_eq(nn_attn_backward(&m->attn, s->n1, aa, s->dh, as, s->dn1), 0, "%s", attn_last_error());
    nn_norm_backward(&m->ln1, s->x, s->mean[0], s->rstd[0], s->dn1, s->dx, T, th);
    cr_assert_eq(nn_embed_backward(&m->emb, tok, s->dx, B, N, th), 0);
    for (size_t i = 0; i < p->used; i++)
        p->data[i] -= lr * p->grad[i];
    return loss;
}

Test(layers, one_block_lm_fits_a_fixed_batch_with_sgd, .timeout = 60)
{
    nn_attn_cfg cfg = {.C = C, .H = 2, .H_kv = 1, .kernel = &attn_kernel_flash, .rope = 1,
                       .mask = {.kind = ATTN_MASK_CAUSAL}};
    tiny_lm m;
    nn_blob cnt = {0};
    cr_assert_eq(tiny_bind(&m, &cfg, &cnt), 0, "%s", attn_last_error());
    nn_blob p = {.data = attn_alloc(sizeof(float) * cnt.used), .grad = attn_alloc(sizeof(float) * cnt.used),
                 .cap = cnt.used};
    cr_assert_eq(tiny_bind(&m, &cfg, &p), 0, "%s", attn_last_error());
    cr_assert_eq(p.used, cnt.used, "counting and binding agree");
    memset(p.data, 0, sizeof(float) * p.used);   /* the alignment gaps too */
    attn_rng r;
    attn_rng_seed(&r, 11);
    nn_embed_init(&m.emb, &r);
    nn_norm_init(&m.ln1), nn_norm_init(&m.ln2), nn_norm_init(&m.lnf);
    nn_attn_init(&m.attn, &r);
    nn_mlp_init(&m.mlp, &r);
    nn_dense_init(&m.head, &r);
    cr_assert_eq(nn_attn_plan(&m.attn, B, N, 2), 0, "%s", attn_last_error());
    nn_blob ab = {.data = attn_alloc(sizeof(float) * nn_attn_acts_floats(&m.attn, B, N)),
                  .cap = nn_attn_acts_floats(&m.attn, B, N)};
    nn_blob sb = {.data = attn_alloc(sizeof(float) * nn_attn_scratch_floats(&m.attn, B, N)),
                  .cap = nn_attn_scratch_floats(&m.attn, B, N)};
    nn_attn_acts aa;
    nn_attn_scratch as;
    cr_assert_eq(nn_attn_acts_bind(&m.attn, B, N, &ab, &aa) || nn_attn_scratch_bind(&m.attn, B, N, &sb, &as), 0);
    int32_t tok[T], tgt[T];
    for (int i = 0; i < T; i++) {
        tok[i] = (int32_t)((i * 3 + i / N) % V);
        tgt[i] = i % N == N - 1 ? NN_IGNORE_INDEX : (int32_t)(((i + 1) * 3 + (i + 1) / N) % V); /* next token */
    }
    tiny_acts *s = calloc(1, sizeof *s);
    double first = tiny_step(&m, s, &aa, &as, tok, tgt, &p, 0.3f), last = first;
    for (int step = 1; step < 150; step++)
        last = tiny_step(&m, s, &aa, &as, tok, tgt, &p, 0.3f);
    cr_log_info("tiny LM loss %.4f -> %.4f after 150 SGD steps", first, last);
    cr_assert(last < 0.25 * first, "loss %.4f -> %.4f: expected to fall below a quarter", first, last);
    nn_attn_free(&m.attn);
    attn_free(p.data), attn_free(p.grad), attn_free(ab.data), attn_free(sb.data);
    free(s);
}
