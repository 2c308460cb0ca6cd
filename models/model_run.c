/* Model plan, forward and backward (model.h). Activations of every block
 * application are kept for the backward, as llm.c keeps its acts. */
#include "model.h"

#include "halt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Activations and gradient buffers of one (B, N) plan. Bt is the number of
 * sequences through the encoder: B, or 2B for the two towers. */
typedef struct {
    int64_t A, Bt, R;          /* block applications, sequences, scored LM rows (max) */
    float *mem;
    float **x, **n1, **mean1, **rstd1, **att, **mid, **n2, **mean2, **rstd2, **mh, **ma, **mo;
    nn_attn_acts *aa;
    nn_gate_acts *ga1, *ga2;   /* gtrxl: per application, after the attention and after the MLP */
    float *gdx, *gds, *gt1, *gt2; /* gtrxl: the gates' backward scratch */
    float *xf, *meanf, *rstdf, *pooled, *feat, *z1, *a1, *z2, *a2, *logits, *row_loss, *xg;
    const float *head_in;      /* lm head: xg, or xf itself when every position is scored (no gather) */
    float *dres, *dn, *dt, *dscr, *dpooled, *dfeat, *dz1, *dz2, *dxf, *dxg;
    nn_attn_scratch *sc;       /* per layer: kernels differ in their extra inputs */
    int32_t *tok, *rows, *row_tgt;
    const float *inputs;       /* regress: the batch's (Bt, N, in_dim) inputs of the last forward */
    float *y_tgt, *dpred;      /* regress: (R) targets and d loss / d prediction */
    uint8_t *valid;
    int64_t *seq_len;          /* (Bt) the batch's lengths, read by the attention blocks */
    int64_t n_rows;            /* scored rows of the last forward */
    int64_t apps_run;          /* block applications the last forward ran (halting act may stop early) */
    nn_act act;                /* halting act: the record of the last forward */
    float *act_dy;             /* halting act: the gradient at the weighted mean */
    nn_act_sums ponder;        /* halting act: over the non-padded positions of the last forward */
    int training;
} plan_t;

static int64_t apps(const nn_model *m) { return m->cfg.layers * m->cfg.loops; }

static void plan_free(nn_model *m)
{
    plan_t *p = m->plan;
    nn_folded_free(m);
    nn_hmt_free(m);
    if (!p)
        return;
    attn_free(p->mem);
    free(p->x);
    free(p->aa);
    free(p->ga1);
    free(p->ga2);
    free(p->sc);
    free(p->tok);
    free(p->rows);
    free(p->row_tgt);
    free(p->valid);
    free(p->seq_len);
    free(p);
    for (int64_t l = 0; l < m->cfg.layers; l++) {
        nn_attn_free(&m->blk[l].attn);
        m->blk[l].attn.seq_len = NULL;
    }
    m->plan = NULL, m->planned = 0;
}

void nn_model_free(nn_model *m)
{
    plan_free(m);
    if (!m->shared) {
        attn_free(m->params);
        attn_free(m->grads);
    }
    m->params = m->grads = NULL;
}

/* Takes every buffer from `b` (counting when b->data is NULL). */
static int take_all(const nn_model *m, plan_t *p, nn_blob *b)
{
    const nn_model_cfg *c = &m->cfg;
    size_t T = (size_t)(p->Bt * m->N), C = (size_t)c->d_model, F = (size_t)c->mlp, B = (size_t)m->B;
    int per_pos = c->head == NN_HEAD_LM || c->head == NN_HEAD_REGRESS; /* heads at scored positions */
    size_t K = c->head == NN_HEAD_LM ? (size_t)c->vocab : c->head == NN_HEAD_REGRESS ? 1
               : c->head == NN_HEAD_TWOTOWER ? 2 : (size_t)c->n_classes;
    size_t rows = per_pos ? (size_t)p->R : B, tm = (size_t)c->tower_mlp;
    int rc = 0;
#define TAKE(ptr, n) rc = rc ? rc : (nn_blob_take(b, (n), &(ptr), NULL) == SIZE_MAX ? ATTN_ENOMEM : 0)
    for (int64_t a = 0; a <= p->A; a++) {
        if (a == 0 || c->mlp)
            TAKE(p->x[a], T * C);   /* without an MLP, x[a+1] is mid[a] (set below) */
        if (a == p->A)
            break;
        TAKE(p->n1[a], T * C), TAKE(p->mean1[a], T), TAKE(p->rstd1[a], T), TAKE(p->att[a], T * C);
        TAKE(p->mid[a], T * C);
        if (c->mlp) {
            TAKE(p->n2[a], T * C), TAKE(p->mean2[a], T), TAKE(p->rstd2[a], T);
            TAKE(p->mh[a], T * F), TAKE(p->ma[a], T * F), TAKE(p->mo[a], T * C);
        }
        if (!rc && nn_attn_acts_bind(&m->blk[a % c->layers].attn, p->Bt, m->N, b, &p->aa[a]))
            rc = ATTN_ENOMEM;
        const nn_block *k = &m->blk[a % c->layers];
        if (!rc && c->gating && (nn_gate_acts_bind(&k->g1, (int64_t)T, b, &p->ga1[a]) ||
                                 (c->mlp && nn_gate_acts_bind(&k->g2, (int64_t)T, b, &p->ga2[a]))))
            rc = ATTN_ENOMEM;
    }
    TAKE(p->xf, T * C), TAKE(p->meanf, T), TAKE(p->rstdf, T);
    TAKE(p->pooled, (size_t)p->Bt * C), TAKE(p->dpooled, (size_t)p->Bt * C);
    TAKE(p->logits, rows * K), TAKE(p->row_loss, rows);
    if (c->head == NN_HEAD_TWOTOWER) {
        TAKE(p->feat, B * 4 * C), TAKE(p->dfeat, B * 4 * C);
        TAKE(p->z1, B * tm), TAKE(p->a1, B * tm), TAKE(p->z2, B * (tm / 2)), TAKE(p->a2, B * (tm / 2));
        TAKE(p->dz1, B * tm), TAKE(p->dz2, B * tm);
    }
    if (per_pos)
        TAKE(p->xg, rows * C), TAKE(p->dxg, rows * C);
    if (c->head == NN_HEAD_REGRESS)
        TAKE(p->y_tgt, rows), TAKE(p->dpred, rows);
    TAKE(p->dres, T * C), TAKE(p->dn, T * C), TAKE(p->dt, T * C), TAKE(p->dxf, T * C);
    TAKE(p->dscr, T * (F ? F : 1));
    if (c->gating)
        TAKE(p->gdx, T * C), TAKE(p->gds, T * C), TAKE(p->gt1, T * C), TAKE(p->gt2, T * C);
    if (c->halting) {
        nn_act *h = &p->act;
        TAKE(h->p, (size_t)c->loops * T), TAKE(h->cum, T), TAKE(h->steps, T), TAKE(h->rem, T);
        TAKE(h->y, T * C), TAKE(h->dz, T), TAKE(h->dkeep, T * C), TAKE(p->act_dy, T * C);
        h->T = (int64_t)T, h->C = (int64_t)C, h->S = c->loops;
    }
    for (int64_t l = 0; l < c->layers; l++)
        if (!rc && nn_attn_scratch_bind(&m->blk[l].attn, p->Bt, m->N, b, &p->sc[l]))
            rc = ATTN_ENOMEM;
#undef TAKE
    for (int64_t a = 0; !c->mlp && a < p->A; a++)
        p->x[a + 1] = p->mid[a];
    return rc;
}

int nn_model_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads)
{
    plan_free(m);
    const nn_model_cfg *c = &m->cfg;
    if (c->variant == NN_VARIANT_FOLDED && !m->shared)
        return nn_folded_plan(m, B, N, rows_max, threads);
    if (c->variant == NN_VARIANT_HMT && !m->shared)
        return nn_hmt_plan(m, B, N, rows_max, threads);
    /* the folded and hmt drivers' window models run on windows of about one segment */
    int64_t n_max = c->variant == NN_VARIANT_FOLDED ? nn_fold_window(c)
                    : c->variant == NN_VARIANT_HMT ? nn_hmt_window(c) : c->max_len;
    if (N > n_max || B < 1 || N < 1)
        return attn_fail(ATTN_EINVAL, "model plan: expected 1 <= N <= max_len=%lld and B >= 1, found N=%lld B=%lld",
                         (long long)n_max, (long long)N, (long long)B);
    plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return attn_fail(ATTN_ENOMEM, "model plan: out of memory");
    m->plan = p, m->B = B, m->N = N, m->threads = threads < 1 ? 1 : threads;
    p->A = apps(m), p->Bt = c->head == NN_HEAD_TWOTOWER ? 2 * B : B;
    p->R = c->head == NN_HEAD_LM || c->head == NN_HEAD_REGRESS ? (rows_max > 0 && rows_max < B * N ? rows_max : B * N) : B;
    size_t A1 = (size_t)p->A + 1;
    p->x = calloc(12 * A1, sizeof *p->x);
    p->aa = calloc(A1, sizeof *p->aa);
    p->ga1 = calloc(A1, sizeof *p->ga1);
    p->ga2 = calloc(A1, sizeof *p->ga2);
    p->sc = calloc((size_t)c->layers, sizeof *p->sc);
    p->tok = malloc(sizeof *p->tok * (size_t)(p->Bt * N));
    p->rows = malloc(sizeof *p->rows * (size_t)(B * N));
    p->row_tgt = malloc(sizeof *p->row_tgt * (size_t)(B * N));
    p->valid = malloc((size_t)(p->Bt * N));
    p->seq_len = malloc(sizeof *p->seq_len * (size_t)p->Bt);
    if (!p->x || !p->aa || !p->ga1 || !p->ga2 || !p->sc || !p->tok || !p->rows || !p->row_tgt || !p->valid || !p->seq_len) {
        plan_free(m);
        return attn_fail(ATTN_ENOMEM, "model plan: out of memory");
    }
    float ***arr[] = {&p->n1, &p->mean1, &p->rstd1, &p->att, &p->mid, &p->n2, &p->mean2, &p->rstd2, &p->mh, &p->ma, &p->mo};
    for (int i = 0; i < 11; i++)
        *arr[i] = p->x + (size_t)(i + 1) * A1;
    int rc = 0;
    for (int64_t l = 0; !rc && l < c->layers; l++)
        rc = nn_attn_plan(&m->blk[l].attn, p->Bt, N, m->threads);
    nn_blob count = {0};
    if (!rc && (rc = take_all(m, p, &count)) == 0) {
        p->mem = attn_alloc(sizeof(float) * count.used);
        nn_blob buf = {.data = p->mem, .cap = count.used};
        rc = p->mem ? take_all(m, p, &buf)
                    : attn_fail(ATTN_ENOMEM, "model plan: cannot allocate %zu activation floats", count.used);
    }
    if (rc) {
        plan_free(m);
        return rc;
    }
    m->planned = 1, m->rows_max = p->R;
    return 0;
}

/* ---------------------------------------------------------------- forward */

static nn_dropout drop_of(const nn_model *m, uint64_t step, int64_t site)
{
    nn_dropout d = {.p = m->cfg.dropout, .seed = 0x64726f70ull, .step = step, .layer = (uint64_t)site};
    return d;
}

static void add_into(const float *x, const float *y, float *out, int64_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] + y[i];
}

static void relu(const float *z, float *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        a[i] = z[i] > 0 ? z[i] : 0;
}

/* out = x + s, or GTrXL's gate g(x, ReLU(s)) (its scratch: dt, free in the
 * forward). */
static void join(nn_model *m, const nn_gate *g, const float *x, const float *s, nn_gate_acts *ga, float *out)
{
    plan_t *p = m->plan;
    int64_t T = p->Bt * m->N;
    if (m->cfg.gating)
        nn_gate_forward(g, x, s, ga, p->dt, out, T, m->threads);
    else
        add_into(x, s, out, T * m->cfg.d_model, m->threads);
}

/* Backward of join: dres holds d out on entry, d x on return; returns d s. */
static const float *join_backward(nn_model *m, const nn_gate *g, const float *x, const nn_gate_acts *ga)
{
    plan_t *p = m->plan;
    int64_t T = p->Bt * m->N;
    if (!m->cfg.gating)
        return p->dres; /* the identity path: d x = d out = d s */
    nn_gate_backward(g, x, ga, p->dres, p->gdx, p->gds, p->gt1, p->gt2, T, m->threads);
    memcpy(p->dres, p->gdx, sizeof(float) * (size_t)(T * m->cfg.d_model));
    return p->gds;
}

/* The encoder's token rows (both towers stacked), the pooling mask and the
 * lengths the attention blocks mask the padding with (none when no
 * sequence is padded, so unpadded batches take the kernels' plain path). */
static void load_tokens(nn_model *m, plan_t *p, const nn_batch *b)
{
    int64_t N = m->N;
    int padded = 0;
    for (int64_t s = 0; s < p->Bt; s++) {
        int second = s >= b->B;
        int64_t i = second ? s - b->B : s;
        const int32_t *src = (second ? b->tokens2 : b->tokens) + i * N;
        const int32_t *len = second ? b->lengths2 : b->lengths;
        memcpy(p->tok + s * N, src, sizeof(int32_t) * (size_t)N);
        int64_t L = len ? len[i] : N;
        for (int64_t n = 0; n < N; n++)
            p->valid[s * N + n] = n < L;
        p->seq_len[s] = L;
        padded |= L < N;
    }
    for (int64_t l = 0; l < m->cfg.layers; l++)
        m->blk[l].attn.seq_len = padded ? p->seq_len : NULL;
}

/* folded window models: application a's buffer rows into its input x, and
 * (the streaming pass) the last rows of its output y out. */
static void fold_rows_in(const nn_model *m, const plan_t *p, int64_t a, float *x)
{
    const nn_fold_rows *f = m->fold;
    int64_t C = m->cfg.d_model;
    for (int64_t w = 0; f && w < p->Bt; w++)
        memcpy(x + w * m->N * C, f->in + (a * p->Bt + w) * f->m * C, sizeof(float) * (size_t)(f->valid[w] * C));
}

static void fold_rows_out(const nn_model *m, const plan_t *p, int64_t a, const float *y)
{
    const nn_fold_rows *f = m->fold;
    int64_t C = m->cfg.d_model;
    for (int64_t w = 0; f && f->out && w < p->Bt; w++) {
        int64_t len = p->seq_len[w], keep = len < f->m ? len : f->m;
        memcpy(f->out + (a * p->Bt + w) * f->m * C, y + (w * m->N + len - keep) * C, sizeof(float) * (size_t)(keep * C));
    }
}

/* The buffer rows are constants (truncated backpropagation): no gradient
 * flows from them into the application below. */
static void fold_rows_stop(const nn_model *m, const plan_t *p, float *dx)
{
    const nn_fold_rows *f = m->fold;
    int64_t C = m->cfg.d_model;
    for (int64_t w = 0; f && w < p->Bt; w++)
        memset(dx + w * m->N * C, 0, sizeof(float) * (size_t)(f->valid[w] * C));
}

/* hmt window models: the injected rows over the embedded input x[0]. */
static void inject_rows_in(const nn_model *m, const plan_t *p, float *x)
{
    const nn_inject_rows *r = m->inject;
    int64_t C = m->cfg.d_model;
    for (int64_t i = 0; r && i < p->Bt * r->n; i++)
        if (r->row[i] >= 0)
            memcpy(x + ((i / r->n) * m->N + r->row[i]) * C, r->in + i * C, sizeof(float) * (size_t)C);
}

/* ... and their gradients out of dx (d x[0]), which then holds none at those
 * rows: the placeholder token under an injected row gets no gradient. */
static void inject_rows_grad(const nn_model *m, const plan_t *p, float *dx)
{
    const nn_inject_rows *r = m->inject;
    int64_t C = m->cfg.d_model;
    for (int64_t i = 0; r && i < p->Bt * r->n; i++) {
        float *d = dx + ((i / r->n) * m->N + (r->row[i] >= 0 ? r->row[i] : 0)) * C;
        if (r->grad)
            for (int64_t k = 0; k < C; k++)
                r->grad[i * C + k] = r->row[i] >= 0 ? d[k] : 0.0f;
        if (r->row[i] >= 0)
            memset(d, 0, sizeof(float) * (size_t)C);
    }
}

/* Block application a: x[a+1] from x[a]. */
static int block_forward(nn_model *m, plan_t *p, int64_t a, int training, uint64_t step)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t T = p->Bt * m->N, C = c->d_model;
    int th = m->threads, rc;
    nn_block *k = &m->blk[a % c->layers];
    fold_rows_in(m, p, a, p->x[a]);
    nn_norm_forward(&k->n1, p->x[a], p->n1[a], p->mean1[a], p->rstd1[a], T, th);
    if ((rc = nn_attn_forward(&k->attn, p->n1[a], &p->aa[a], p->att[a])) != 0)
        return rc;
    nn_dropout d = drop_of(m, step, 2 * a);
    if (training && d.p > 0 && (rc = nn_dropout_forward(&d, p->att[a], p->att[a], T * C, th)) != 0)
        return rc;
    join(m, &k->g1, p->x[a], p->att[a], &p->ga1[a], p->mid[a]);
    if (!c->mlp) {
        fold_rows_out(m, p, a, p->mid[a]);
        return 0;
    }
    nn_norm_forward(&k->n2, p->mid[a], p->n2[a], p->mean2[a], p->rstd2[a], T, th);
    nn_mlp_forward(&k->mlp, p->n2[a], p->mh[a], p->ma[a], p->mo[a], T, th);
    d = drop_of(m, step, 2 * a + 1);
    if (training && d.p > 0 && (rc = nn_dropout_forward(&d, p->mo[a], p->mo[a], T * C, th)) != 0)
        return rc;
    join(m, &k->g2, p->mid[a], p->mo[a], &p->ga2[a], p->x[a + 1]);
    fold_rows_out(m, p, a, p->x[a + 1]);
    return 0;
}

/* The ponder of the last forward: its mean steps, and tau * mean (N + R)
 * added to *loss. */
static void add_ponder(nn_model *m, plan_t *p, double *loss)
{
    p->ponder = nn_act_ponder(&p->act, p->valid);
    *loss += p->ponder.count ? (double)m->cfg.ponder_cost * p->ponder.ponder / (double)p->ponder.count : 0;
}

static int encoder_forward(nn_model *m, plan_t *p, int training, uint64_t step)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t Bt = p->Bt, N = m->N, C = c->d_model, T = Bt * N, L = c->layers;
    int th = m->threads, rc = nn_embed_forward(&m->emb, p->tok, p->x[0], Bt, N, th);
    if (!rc && c->head == NN_HEAD_REGRESS) { /* x0 = wte[0] + wpe[n] + inputs W_in' (dt is free until the blocks) */
        nn_dense_forward(&m->readin, p->inputs, p->dt, T, th);
        add_into(p->x[0], p->dt, p->x[0], T * C, th);
    }
    if (!rc && c->pos == NN_POS_SINUSOID)
        nn_sinusoid_add(p->x[0], Bt, N, C, th);
    inject_rows_in(m, p, p->x[0]);
    if (c->halting)
        nn_act_begin(&p->act);
    p->apps_run = p->A;
    for (int64_t a = 0; !rc && a < p->A; a++) {
        rc = block_forward(m, p, a, training, step);
        if (rc || !c->halting || (a + 1) % L)
            continue;
        int n = (int)((a + 1) / L); /* step n done: halt or go on */
        if (!nn_act_step(&p->act, &m->halt, p->x[a + 1 - L], p->x[a + 1], n, th)) {
            p->apps_run = a + 1;
            break;
        }
    }
    if (!rc)
        nn_norm_forward(&m->nf, c->halting ? p->act.y : p->x[p->A], p->xf, p->meanf, p->rstdf, T, th);
    return rc;
}

static int argmax_row(const float *x, int64_t K)
{
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        best = x[k] > x[best] ? k : best;
    return (int)best;
}

/* The regress head: the final states at the scored positions, read out to
 * one number each; loss = mean over them of (prediction - value)^2. */
static int regress_forward(nn_model *m, plan_t *p, const nn_batch *b, double *loss, int64_t *correct, int64_t *scored)
{
    int64_t R = 0, C = m->cfg.d_model, BN = b->B * m->N;
    for (int64_t t = 0; t < BN; t++)
        if (b->scored[t]) {
            if (R == p->R)
                return attn_fail(ATTN_EINVAL, "model forward: more than the planned %lld scored positions in a batch",
                                 (long long)p->R);
            p->rows[R] = (int32_t)t, p->y_tgt[R++] = b->values[t];
        }
    for (int64_t r = 0; r < R; r++)
        memcpy(p->xg + r * C, p->xf + (int64_t)p->rows[r] * C, sizeof(float) * (size_t)C);
    p->n_rows = R;
    nn_dense_forward(&m->h1, p->xg, p->logits, R, m->threads);
    double sum = 0;
    for (int64_t r = 0; r < R; r++) {
        double e = (double)p->logits[r] - (double)p->y_tgt[r];
        sum += e * e;
        p->dpred[r] = (float)(2.0 * e / (double)R);
    }
    *loss = R ? sum / (double)R : 0, *correct = 0, *scored = R;
    return 0;
}

const float *nn_model_regress_out(const nn_model *m, int64_t *n)
{
    const plan_t *p = m->plan;
    *n = p && m->cfg.head == NN_HEAD_REGRESS ? p->n_rows : 0;
    return p && m->cfg.head == NN_HEAD_REGRESS ? p->logits : NULL;
}

int nn_model_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                     int64_t *scored, int32_t *pred)
{
    plan_t *p = m->plan;
    const nn_model_cfg *c = &m->cfg;
    if (m->folded)
        return nn_folded_forward(m, b, training, step, loss, correct, scored, pred);
    if (m->hmt)
        return nn_hmt_forward(m, b, training, step, loss, correct, scored, pred);
    if (!m->planned || b->B != m->B)
        return attn_fail(ATTN_EINVAL, "model forward: expected a batch of the planned B=%lld, found %lld",
                         (long long)m->B, (long long)b->B);
    int64_t B = b->B, N = m->N, C = c->d_model;
    int th = m->threads, rc;
    p->training = training;
    load_tokens(m, p, b);
    p->inputs = b->inputs;
    if (c->head == NN_HEAD_REGRESS && (!b->inputs || !b->values || !b->scored))
        return attn_fail(ATTN_EINVAL, "model forward: the regress head expected inputs, values and scored flags");
    if ((rc = encoder_forward(m, p, training, step)) != 0)
        return rc;
    if (c->head == NN_HEAD_REGRESS)
        return regress_forward(m, p, b, loss, correct, scored);
    if (c->head == NN_HEAD_LM) {
        int64_t R = 0;
        for (int64_t t = 0; t < B * N; t++)
            if (b->targets[t] != NN_IGNORE_INDEX) {
                if (R == p->R)
                    return attn_fail(ATTN_EINVAL, "model forward: more than the planned %lld scored positions in a "
                                     "batch", (long long)p->R);
                p->rows[R] = (int32_t)t, p->row_tgt[R++] = b->targets[t];
            }
        /* rows ascend, so R = B N means rows[r] = r: the head reads xf in place */
        p->head_in = R == p->Bt * N ? p->xf : p->xg;
        for (int64_t r = 0; p->head_in == p->xg && r < R; r++)
            memcpy(p->xg + r * C, p->xf + (int64_t)p->rows[r] * C, sizeof(float) * (size_t)C);
        p->n_rows = R;
        int64_t nv;
        nn_dense_forward(&m->h1, p->head_in, p->logits, R, th);
        *correct = nn_xent_correct(p->logits, p->row_tgt, R, c->vocab, th);
        for (int64_t t = 0; pred && t < B * N; t++)
            pred[t] = -1;
        for (int64_t r = 0; pred && r < R; r++) /* before the loss turns logits into dlogits in place */
            pred[p->rows[r]] = argmax_row(p->logits + r * c->vocab, c->vocab);
        if ((rc = nn_xent_tokens(p->logits, p->row_tgt, R, c->vocab, p->logits, p->row_loss, loss, &nv, th)) != 0)
            return rc;
        *scored = nv;
        if (c->halting)
            add_ponder(m, p, loss);
        return 0;
    }
    /* pooled representation of every sequence */
    for (int64_t s = 0; s < p->Bt; s++) {
        if (c->pool == NN_POOL_CLS)
            memcpy(p->pooled + s * C, p->xf + s * N * C, sizeof(float) * (size_t)C);
    }
    if (c->pool == NN_POOL_MEAN)
        nn_meanpool_forward(p->xf, p->valid, p->pooled, p->Bt, N, C, th);
    const float *head_in = p->pooled;
    if (c->head == NN_HEAD_TWOTOWER) {
        for (int64_t i = 0; i < B; i++) {
            const float *u = p->pooled + i * C, *v = p->pooled + (B + i) * C;
            float *f = p->feat + i * 4 * C;
            for (int64_t k = 0; k < C; k++)
                f[k] = u[k], f[C + k] = v[k], f[2 * C + k] = u[k] * v[k], f[3 * C + k] = u[k] - v[k];
        }
        int64_t tm = c->tower_mlp;
        nn_dense_forward(&m->h1, p->feat, p->z1, B, th);
        relu(p->z1, p->a1, B * tm);
        nn_dense_forward(&m->h2, p->a1, p->z2, B, th);
        relu(p->z2, p->a2, B * (tm / 2));
        head_in = p->a2;
        nn_dense_forward(&m->h3, head_in, p->logits, B, th);
    } else {
        nn_dense_forward(&m->h1, head_in, p->logits, B, th);
    }
    int64_t K = c->head == NN_HEAD_TWOTOWER ? 2 : c->n_classes;
    *correct = nn_xent_correct(p->logits, b->labels, B, K, th);
    *scored = B;
    for (int64_t i = 0; pred && i < B; i++)
        pred[i] = argmax_row(p->logits + i * K, K);
    rc = nn_xent_classes(p->logits, b->labels, B, K, p->logits, p->row_loss, loss, th);
    if (!rc && c->halting)
        add_ponder(m, p, loss);
    return rc;
}

/* ---------------------------------------------------------------- backward */

static void relu_backward(const float *z, const float *da, float *dz, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dz[i] = z[i] > 0 ? da[i] : 0;
}

static void scale_rows(float *x, int64_t n, float s)
{
    for (int64_t i = 0; s != 1.0f && i < n; i++)
        x[i] *= s;
}

/* Head backward: fills p->dxf, the gradient at the final norm's output. */
static void head_backward(nn_model *m, plan_t *p, const nn_batch *b, float scale)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t B = b->B, N = m->N, C = c->d_model, T = p->Bt * N;
    int th = m->threads;
    if (c->head == NN_HEAD_LM && p->head_in == p->xf) { /* every position scored: dxf written in place */
        const float *dout = p->logits;
        scale_rows(p->logits, p->n_rows * c->vocab, scale);
        nn_dense_backward_n(&(const nn_dense *){&m->h1}, 1, p->xf, &dout, p->dxf, 0, p->n_rows, th);
        return;
    }
    memset(p->dxf, 0, sizeof(float) * (size_t)(T * C));
    if (c->head == NN_HEAD_LM || c->head == NN_HEAD_REGRESS) {
        int64_t R = p->n_rows, K = c->head == NN_HEAD_LM ? c->vocab : 1;
        float *dout = c->head == NN_HEAD_LM ? p->logits : p->dpred; /* the lm head's dlogits replaced its logits */
        scale_rows(dout, R * K, scale);
        memset(p->dxg, 0, sizeof(float) * (size_t)(R * C));
        nn_dense_backward(&m->h1, p->xg, dout, p->dxg, R, th);
        for (int64_t r = 0; r < R; r++) /* rows are distinct positions: no two writes collide */
            memcpy(p->dxf + (int64_t)p->rows[r] * C, p->dxg + r * C, sizeof(float) * (size_t)C);
        return;
    }
    int64_t K = c->head == NN_HEAD_TWOTOWER ? 2 : c->n_classes;
    scale_rows(p->logits, B * K, scale);
    memset(p->dpooled, 0, sizeof(float) * (size_t)(p->Bt * C));
    if (c->head == NN_HEAD_TWOTOWER) {
        int64_t tm = c->tower_mlp;
        memset(p->dz2, 0, sizeof(float) * (size_t)(B * tm));
        nn_dense_backward(&m->h3, p->a2, p->logits, p->dz2, B, th);       /* d a2 */
        relu_backward(p->z2, p->dz2, p->dz2, B * (tm / 2));
        memset(p->dz1, 0, sizeof(float) * (size_t)(B * tm));
        nn_dense_backward(&m->h2, p->a1, p->dz2, p->dz1, B, th);          /* d a1 */
        relu_backward(p->z1, p->dz1, p->dz1, B * tm);
        memset(p->dfeat, 0, sizeof(float) * (size_t)(B * 4 * C));
        nn_dense_backward(&m->h1, p->feat, p->dz1, p->dfeat, B, th);
        for (int64_t i = 0; i < B; i++) { /* f = [u, v, u*v, u-v] */
            const float *u = p->pooled + i * C, *v = p->pooled + (B + i) * C, *df = p->dfeat + i * 4 * C;
            float *du = p->dpooled + i * C, *dv = p->dpooled + (B + i) * C;
            for (int64_t k = 0; k < C; k++) {
                du[k] = df[k] + df[2 * C + k] * v[k] + df[3 * C + k];
                dv[k] = df[C + k] + df[2 * C + k] * u[k] - df[3 * C + k];
            }
        }
    } else {
        nn_dense_backward(&m->h1, p->pooled, p->logits, p->dpooled, B, th);
    }
    if (c->pool == NN_POOL_MEAN)
        nn_meanpool_backward(p->valid, p->dpooled, p->dxf, p->Bt, N, C, th);
    else
        for (int64_t s = 0; s < p->Bt; s++)
            memcpy(p->dxf + s * N * C, p->dpooled + s * C, sizeof(float) * (size_t)C);
}

/* Backward of the dropout at `site`: *g (T, C) becomes the gradient before
 * it (in p->dt), unchanged without dropout. */
static int dropout_backward(nn_model *m, plan_t *p, int64_t site, uint64_t step, const float **g)
{
    nn_dropout d = drop_of(m, step, site);
    if (d.p <= 0)
        return 0;
    int64_t n = p->Bt * m->N * m->cfg.d_model;
    memset(p->dt, 0, sizeof(float) * (size_t)n);
    int rc = nn_dropout_backward(&d, *g, p->dt, n, m->threads);
    if (!rc)
        *g = p->dt;
    return rc;
}

/* Backward of block application a: dres holds d x[a+1] on entry, d x[a] on return. */
static int block_backward(nn_model *m, plan_t *p, int64_t a, uint64_t step)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t T = p->Bt * m->N, C = c->d_model;
    size_t bytes = sizeof(float) * (size_t)(T * C);
    int th = m->threads, rc;
    nn_block *k = &m->blk[a % c->layers];
    if (c->mlp) { /* x[a+1] = join(mid, drop(mlp(n2(mid)))): dres then carries d mid's direct path */
        const float *dmo = join_backward(m, &k->g2, p->mid[a], &p->ga2[a]);
        if ((rc = dropout_backward(m, p, 2 * a + 1, step, &dmo)) != 0)
            return rc;
        nn_zero_n(&p->dn, &bytes, 1, th);
        nn_mlp_backward(&k->mlp, p->n2[a], p->mh[a], p->ma[a], dmo, p->dscr, p->dn, T, th);
        nn_norm_backward(&k->n2, p->mid[a], p->mean2[a], p->rstd2[a], p->dn, p->dres, T, th);
    }
    const float *datt = join_backward(m, &k->g1, p->x[a], &p->ga1[a]); /* mid = join(x, drop(attn(n1(x)))) */
    if ((rc = dropout_backward(m, p, 2 * a, step, &datt)) != 0)
        return rc;
    nn_zero_n(&p->dn, &bytes, 1, th);
    if ((rc = nn_attn_backward(&k->attn, p->n1[a], &p->aa[a], datt, &p->sc[a % c->layers], p->dn)) != 0)
        return rc;
    nn_norm_backward(&k->n1, p->x[a], p->mean1[a], p->rstd1[a], p->dn, p->dres, T, th);
    fold_rows_stop(m, p, p->dres);
    return 0;
}

/* Halting act: the stack's steps backward from the last that ran, each
 * between the halting's backward (weights, halting unit) and the hold of the
 * positions whose state was copied. p->act_dy holds d y. */
static int act_backward(nn_model *m, plan_t *p, uint64_t step, float scale)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t L = c->layers, count = 0;
    const float *states[NN_MAX_LOOPS + 1];
    for (int n = 0; n <= c->loops; n++)
        states[n] = p->x[n * L];
    for (int64_t t = 0; t < p->act.T; t++)
        count += p->valid[t];
    float cost = count ? c->ponder_cost * scale / (float)count : 0.0f;
    int rc = 0;
    for (int n = (int)(p->apps_run / L); !rc && n >= 1; n--) {
        nn_act_backward_step(&p->act, &m->halt, states, n, p->act_dy, p->valid, cost, p->dres, m->threads);
        nn_act_hold(&p->act, n, p->dres);
        for (int64_t a = n * L - 1; !rc && a >= (n - 1) * L; a--)
            rc = block_backward(m, p, a, step);
        nn_act_release(&p->act, n, p->dres);
    }
    return rc;
}

/* The backward below the head: p->dxf holds d of the final norm's output.
 * updates = 0: no non-gradient weight updates (a second backward over the
 * same forward, models/hmt.c). */
static int stack_backward(nn_model *m, plan_t *p, uint64_t step, float scale, int updates)
{
    const nn_model_cfg *c = &m->cfg;
    int64_t N = m->N, C = c->d_model, T = p->Bt * N;
    size_t bytes = sizeof(float) * (size_t)(T * C);
    int th = m->threads, rc = 0;
    memset(p->dres, 0, bytes); /* dres: gradient w.r.t. the residual stream x[a] */
    if (c->halting) {
        memset(p->act_dy, 0, bytes);
        nn_norm_backward(&m->nf, p->act.y, p->meanf, p->rstdf, p->dxf, p->act_dy, T, th);
        rc = act_backward(m, p, step, scale);
    } else {
        nn_norm_backward(&m->nf, p->x[p->A], p->meanf, p->rstdf, p->dxf, p->dres, T, th);
        for (int64_t a = p->A - 1; !rc && a >= 0; a--)
            rc = block_backward(m, p, a, step);
    }
    inject_rows_grad(m, p, p->dres);
    if (!rc)
        rc = nn_embed_backward(&m->emb, p->tok, p->dres, p->Bt, N, th);
    if (!rc && c->head == NN_HEAD_REGRESS)
        nn_dense_backward(&m->readin, p->inputs, p->dres, NULL, T, th);
    /* non-gradient weight updates (routing's centroid EMA) after the whole
     * backward: the step's forward and backward saw the same weights, also
     * where a block is applied more than once (loops) */
    for (int64_t a = 0; !rc && updates && a < p->apps_run; a++)
        rc = nn_attn_train_update(&m->blk[a % c->layers].attn, &p->aa[a]);
    /* the logits now hold scaled gradients: one backward per forward, but for
     * the hmt driver's second backward from the hidden states */
    p->training = m->keep_acts;
    return rc;
}

int nn_model_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale)
{
    plan_t *p = m->plan;
    if (m->folded)
        return nn_folded_backward(m, b, step, scale);
    if (m->hmt)
        return nn_hmt_backward(m, b, step, scale);
    if (!m->planned || !p->training)
        return attn_fail(ATTN_EINVAL, "model backward: expected a training forward first");
    head_backward(m, p, b, scale);
    return stack_backward(m, p, step, scale, 1);
}

int nn_model_backward_hidden(nn_model *m, const float *dhidden, uint64_t step, int updates)
{
    plan_t *p = m->plan;
    if (!m->planned || m->folded || m->hmt || !p->training)
        return attn_fail(ATTN_EINVAL, "model backward: expected a training forward of the encoder first");
    memcpy(p->dxf, dhidden, sizeof(float) * (size_t)(p->Bt * m->N * m->cfg.d_model));
    return stack_backward(m, p, step, 1.0f, updates);
}

nn_halting_stats nn_model_halting_stats(const nn_model *m)
{
    const plan_t *p = m->plan;
    nn_halting_stats s = {.margin = INFINITY};
    if (!p || !m->cfg.halting || !p->ponder.count)
        return s;
    s.mean_steps = p->ponder.steps / (double)p->ponder.count, s.margin = p->act.margin;
    s.min_steps = p->ponder.min_steps, s.max_steps = p->ponder.max_steps;
    return s;
}

int64_t nn_model_applications(const nn_model *m)
{
    const plan_t *p = m->plan;
    return p ? p->apps_run : 0;
}

int nn_model_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    const plan_t *p = m->plan;
    if (m->folded)
        return nn_folded_attn_inputs(m, app, q, k, v);
    if (m->hmt)
        return nn_hmt_attn_inputs(m, app, q, k, v);
    if (!p || app < 0 || app >= p->apps_run) /* halting act: the applications its last forward ran */
        return attn_fail(ATTN_EINVAL, "model: expected a planned model and a block application below %lld, found %lld",
                         (long long)(p ? p->apps_run : apps(m)), (long long)app);
    const nn_attn *l = &m->blk[app % m->cfg.layers].attn;
    const nn_attn_acts *a = &p->aa[app];
    int64_t H = l->cfg.H, Hk = l->cfg.H_kv, D = l->D, N = m->N;
    /* (Bt, N, heads, D) buffers seen as [B, heads, N, D] */
    *q = (attn_tensor){a->q, p->Bt, H, N, D, N * H * D, D, H * D};
    *k = (attn_tensor){a->k, p->Bt, Hk, N, D, N * Hk * D, D, Hk * D};
    *v = (attn_tensor){a->v, p->Bt, Hk, N, D, N * Hk * D, D, Hk * D};
    return 0;
}

int nn_model_hidden_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, const float **hidden)
{
    plan_t *p = m->plan;
    if (!m->planned || m->folded || m->hmt || b->B != m->B)
        return attn_fail(ATTN_EINVAL, "model encode: expected a planned model and a batch of B=%lld, found %lld",
                         (long long)m->B, (long long)b->B);
    p->training = training;
    load_tokens(m, p, b);
    p->inputs = b->inputs;
    int rc = encoder_forward(m, p, training, step);
    *hidden = p->xf;
    return rc;
}

int nn_model_encode(nn_model *m, const nn_batch *b, const float **hidden)
{
    return nn_model_hidden_forward(m, b, 0, 0, hidden);
}
