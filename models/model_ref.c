/* The whole model in double precision, from the layers' plain references:
 * the twin the fp32 model's gradients are checked against by central
 * differences (tests/test_model.c). Dropout is not modelled (p must be 0).
 * The short convolution (cfg.short_conv) is inside nn_attn_forward_ref. The
 * regress head (in-context regression) reads its float inputs through the
 * read-in and is scored by the squared error at the scored positions. */
#include "model_ref.h"

#include "halt.h"

#include <stdlib.h>
#include <string.h>

/* x <- x + s, or x <- g(x, ReLU(s)) (GTrXL's gate); tmp (rows, C) is scratch. */
static int join_ref(const nn_model_cfg *c, const nn_gate *g, const double *P, double *x, const double *s, double *tmp,
                    int64_t rows)
{
    size_t n = (size_t)(rows * c->d_model);
    if (c->gating) {
        int rc = nn_gate_forward_ref(g, P, x, s, tmp, rows);
        if (!rc)
            memcpy(x, tmp, sizeof *x * n);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        x[i] += s[i];
    return 0;
}

/* Block application a in place on x (T, C); h, y scratch. */
int nn_block_forward_ref(const nn_model *m, int64_t a, const double *P, double *x, double *h, double *y, int64_t Bt,
                         int64_t N, const int64_t *seq_len)
{
    const nn_model_cfg *c = &m->cfg;
    const nn_block *k = &m->blk[a % c->layers];
    int64_t T = Bt * N;
    nn_norm_forward_ref(&k->n1, P, x, h, T);
    int rc = nn_attn_forward_ref(&k->attn, P, h, y, Bt, N, seq_len);
    if (rc || (rc = join_ref(c, &k->g1, P, x, y, h, T)) != 0 || !c->mlp)
        return rc;
    nn_norm_forward_ref(&k->n2, P, x, h, T);
    nn_mlp_forward_ref(&k->mlp, P, h, y, T);
    return join_ref(c, &k->g2, P, x, y, h, T);
}

/* x += inputs W_in' (the regress head's read-in), in double. */
static int readin_ref(const nn_model *m, const double *P, const nn_batch *b, double *x, int64_t T)
{
    int64_t D = m->cfg.in_dim, C = m->cfg.d_model;
    double *in = malloc(sizeof *in * (size_t)(T * D)), *y = malloc(sizeof *y * (size_t)(T * C));
    if (!in || !y) {
        free(in), free(y);
        return attn_fail(ATTN_ENOMEM, "model reference: out of memory");
    }
    for (int64_t i = 0; i < T * D; i++)
        in[i] = b->inputs[i];
    nn_dense_forward_ref(&m->readin, P, in, y, T);
    for (int64_t i = 0; i < T * C; i++)
        x[i] += y[i];
    free(in), free(y);
    return 0;
}

/* Mean over the scored positions of (h1(h) - value)^2. */
static int regress_loss_ref(const nn_model *m, const double *P, const nn_batch *b, const double *h, double *pred,
                            int64_t T, double *loss)
{
    nn_dense_forward_ref(&m->h1, P, h, pred, T);
    double sum = 0;
    int64_t R = 0;
    for (int64_t t = 0; t < T; t++)
        if (b->scored[t]) {
            double e = pred[t] - (double)b->values[t];
            sum += e * e, R++;
        }
    *loss = R ? sum / (double)R : 0;
    return 0;
}

/* Halting act: every step of the stack, then its halting (halt.h), all
 * `loops` steps (a halted position's state stays, so the steps after the
 * last halt change nothing). x holds the weighted mean on return; *ponder
 * the mean N + R over the positions with valid. */
static int act_stack_ref(const nn_model *m, const double *P, double *x, double *h, double *y, int64_t Bt, int64_t N,
                         const int64_t *seq_len, const uint8_t *valid, double *ponder)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t T = Bt * N, C = c->d_model;
    size_t TC = (size_t)(T * C);
    double *prev = malloc(sizeof *prev * TC), *mean = calloc(TC, sizeof *mean), *logit = malloc(sizeof *logit * (size_t)T);
    double *steps = calloc((size_t)T, sizeof *steps), *cum = calloc((size_t)T, sizeof *cum);
    double *rem = calloc((size_t)T, sizeof *rem);
    int rc = prev && mean && logit && steps && cum && rem ? 0 : attn_fail(ATTN_ENOMEM, "model reference: out of memory");
    for (int n = 1; !rc && n <= c->loops; n++) {
        memcpy(prev, x, sizeof *prev * TC);
        for (int64_t a = (n - 1) * c->layers; !rc && a < n * c->layers; a++)
            rc = nn_block_forward_ref(m, a, P, x, h, y, Bt, N, seq_len);
        if (!rc)
            nn_act_step_ref(&m->halt, P, prev, x, n, c->loops, T, C, steps, cum, rem, mean, logit);
    }
    double sum = 0;
    int64_t count = 0;
    for (int64_t t = 0; !rc && t < T; t++)
        if (valid[t])
            sum += steps[t] + rem[t], count++;
    *ponder = count ? sum / (double)count : 0;
    if (!rc)
        memcpy(x, mean, sizeof *x * TC);
    free(prev), free(mean), free(logit), free(steps), free(cum), free(rem);
    return rc;
}

int nn_model_loss_ref(const nn_model *m, const double *P, const nn_batch *b, int64_t N, double *loss)
{
    const nn_model_cfg *c = &m->cfg;
    if (c->variant == NN_VARIANT_FOLDED)
        return nn_folded_loss_ref(m, P, P, b, N, loss);
    if (c->variant == NN_VARIANT_HMT)
        return nn_hmt_loss_ref(m, P, P, b, N, loss);
    if (c->dropout > 0)
        return attn_fail(ATTN_EINVAL, "model reference: expected dropout 0, found %g", c->dropout);
    int two = c->head == NN_HEAD_TWOTOWER;
    int64_t B = b->B, Bt = two ? 2 * B : B, C = c->d_model, T = Bt * N, A = c->layers * c->loops;
    int per_pos = c->head == NN_HEAD_LM || c->head == NN_HEAD_REGRESS;
    int64_t K = c->head == NN_HEAD_LM ? c->vocab : c->head == NN_HEAD_REGRESS ? 1 : two ? 2 : c->n_classes;
    int64_t rows = per_pos ? B * N : B;
    size_t TC = (size_t)(T * C);
    double *x = calloc(TC, sizeof *x), *h = calloc(TC, sizeof *h), *y = calloc(TC, sizeof *y);
    double *pooled = calloc((size_t)(Bt * C), sizeof *pooled), *logits = calloc((size_t)(rows * K), sizeof *logits);
    int32_t *tok = malloc(sizeof *tok * (size_t)T), *tgt = malloc(sizeof *tgt * (size_t)rows);
    uint8_t *valid = malloc((size_t)T);
    int64_t *seq_len = malloc(sizeof *seq_len * (size_t)Bt);
    int rc = x && h && y && pooled && logits && tok && tgt && valid && seq_len
                 ? 0 : attn_fail(ATTN_ENOMEM, "model reference: out of memory");
    int padded = 0;
    for (int64_t s = 0; !rc && s < Bt; s++) {
        int second = s >= B;
        int64_t i = second ? s - B : s, L = (second ? b->lengths2 : b->lengths) ? (second ? b->lengths2 : b->lengths)[i] : N;
        memcpy(tok + s * N, (second ? b->tokens2 : b->tokens) + i * N, sizeof *tok * (size_t)N);
        for (int64_t n = 0; n < N; n++)
            valid[s * N + n] = n < L;
        seq_len[s] = L;
        padded |= L < N;
    }
    if (!rc)
        rc = nn_embed_forward_ref(&m->emb, P, tok, x, Bt, N);
    if (!rc && c->head == NN_HEAD_REGRESS)
        rc = readin_ref(m, P, b, x, T);
    if (!rc && c->pos == NN_POS_SINUSOID)
        nn_sinusoid_add_ref(x, Bt, N, C);
    double ponder = 0;
    if (!rc && c->halting)
        rc = act_stack_ref(m, P, x, h, y, Bt, N, padded ? seq_len : NULL, valid, &ponder);
    for (int64_t a = 0; !rc && !c->halting && a < A; a++)
        rc = nn_block_forward_ref(m, a, P, x, h, y, Bt, N, padded ? seq_len : NULL);
    if (!rc)
        nn_norm_forward_ref(&m->nf, P, x, h, T);
    if (!rc && c->head == NN_HEAD_REGRESS) {
        rc = regress_loss_ref(m, P, b, h, logits, T, loss);
    } else if (!rc && c->head == NN_HEAD_LM) {
        memcpy(tgt, b->targets, sizeof *tgt * (size_t)rows);
        nn_dense_forward_ref(&m->h1, P, h, logits, rows);
    } else if (!rc) {
        memcpy(tgt, b->labels, sizeof *tgt * (size_t)B);
        if (c->pool == NN_POOL_MEAN)
            nn_meanpool_forward_ref(h, valid, pooled, Bt, N, C);
        else
            for (int64_t s = 0; s < Bt; s++)
                memcpy(pooled + s * C, h + s * N * C, sizeof *pooled * (size_t)C);
        if (two) {
            int64_t tm = c->tower_mlp;
            double *f = calloc((size_t)(B * 4 * C), sizeof *f), *z1 = calloc((size_t)(B * tm), sizeof *z1),
                   *z2 = calloc((size_t)(B * tm), sizeof *z2);
            for (int64_t i = 0; f && i < B; i++)
                for (int64_t q = 0; q < C; q++) {
                    double u = pooled[i * C + q], v = pooled[(B + i) * C + q];
                    f[i * 4 * C + q] = u, f[i * 4 * C + C + q] = v, f[i * 4 * C + 2 * C + q] = u * v,
                                    f[i * 4 * C + 3 * C + q] = u - v;
                }
            if (!f || !z1 || !z2)
                rc = attn_fail(ATTN_ENOMEM, "model reference: out of memory");
            if (!rc) {
                nn_dense_forward_ref(&m->h1, P, f, z1, B);
                for (int64_t i = 0; i < B * tm; i++)
                    z1[i] = z1[i] > 0 ? z1[i] : 0;
                nn_dense_forward_ref(&m->h2, P, z1, z2, B);
                for (int64_t i = 0; i < B * (tm / 2); i++)
                    z2[i] = z2[i] > 0 ? z2[i] : 0;
                nn_dense_forward_ref(&m->h3, P, z2, logits, B);
            }
            free(f), free(z1), free(z2);
        } else {
            nn_dense_forward_ref(&m->h1, P, pooled, logits, B);
        }
    }
    if (!rc && c->head != NN_HEAD_REGRESS)
        rc = nn_xent_ref(logits, tgt, rows, K, NULL, loss);
    if (!rc)
        *loss += (double)c->ponder_cost * ponder;
    free(x), free(h), free(y), free(pooled), free(logits), free(tok), free(tgt), free(valid), free(seq_len);
    return rc;
}
