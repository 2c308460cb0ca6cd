/* The hmt model in double precision, written as the recurrence itself:
 * segment after segment, a summary window, the recall over the memories
 * kept so far, the augmented window and the memory it writes, on windows of
 * exactly their rows (none of the fp32 driver's batching of segments,
 * padding or streaming/batch split). The twin the fp32 model is checked
 * against (tests/test_hmt.c). */
#include "hmt_layout.h"
#include "model_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const nn_model *m;
    int64_t B, N, S, C, Nm, W;
    double *x, *h, *y, *hid;      /* windows (B, W, C); the final norm's output there */
    double *out;                  /* (B, N, C) the last block's output at every token */
    double *run, *record;         /* (B, N_m, C) the FIFO; (S, B, N_m, C) what each segment read */
    double *sq, *q, *keys, *P;    /* (B, C), (B, C), (B, N_m, C), (B, C) */
    double *fresh, *next, *Mu;    /* (B, C) memories written with P by the previous and this segment;
                                     (B, N_m, C) the memories a loss window reads */
    int32_t *tok;
} ref_t;

/* Embeds tok (B, n) with positions from the window's first row; rows
 * `row[i]` (one per sequence, -1: none) replaced by vec[i*C]. */
static int embed_ref(ref_t *r, const double *P, int64_t n, const int64_t *row, const double *vec)
{
    const nn_model *m = r->m;
    int rc = nn_embed_forward_ref(&m->emb, P, r->tok, r->x, r->B, n);
    if (!rc && m->cfg.pos == NN_POS_SINUSOID)
        nn_sinusoid_add_ref(r->x, r->B, n, r->C);
    for (int64_t i = 0; row && i < r->B; i++)
        if (row[i] >= 0)
            memcpy(r->x + (i * n + row[i]) * r->C, vec + i * r->C, sizeof *vec * (size_t)r->C);
    return rc;
}

/* Every block application on the windows r->x (B, n), then the final norm into r->hid. */
static int backbone_ref(ref_t *r, const double *P, int64_t n)
{
    const nn_model *m = r->m;
    int rc = 0;
    for (int64_t a = 0; !rc && a < m->cfg.layers * m->cfg.loops; a++)
        rc = nn_block_forward_ref(m, a, P, r->x, r->h, r->y, r->B, n, NULL);
    if (!rc)
        nn_norm_forward_ref(&m->nf, P, r->x, r->hid, r->B * n);
    return rc;
}

/* P_n of every sequence from the summaries r->sq and the n memories M
 * (B, N_m, C): softmax(q K^T / sqrt(C)) M. */
static void recall_ref(ref_t *r, const double *P, const double *M, int64_t n)
{
    const nn_model *m = r->m;
    int64_t C = r->C;
    nn_dense_forward_ref(&m->hmt_q, P, r->sq, r->q, r->B);
    for (int64_t i = 0; i < r->B; i++) {
        const double *Mi = M + i * r->Nm * C, *q = r->q + i * C;
        double *K = r->keys + i * r->Nm * C, s[n], mx = -INFINITY, z = 0;
        nn_dense_forward_ref(&m->hmt_k, P, Mi, K, n);
        for (int64_t j = 0; j < n; j++) {
            s[j] = 0;
            for (int64_t k = 0; k < C; k++)
                s[j] += q[k] * K[j * C + k];
            s[j] /= sqrt((double)C);
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < n; j++)
            z += (s[j] = exp(s[j] - mx));
        for (int64_t k = 0; k < C; k++) {
            double v = 0;
            for (int64_t j = 0; j < n; j++)
                v += s[j] / z * Mi[j * C + k];
            r->P[i * C + k] = v;
        }
    }
}

/* What a window computation is for: the model's segment (memories as
 * recorded), or, with unroll 2 in the use pass, the memory the segment
 * writes with P from its recorded memories (WRITER), and its loss with the
 * newest memory replaced by the previous segment's WRITER output (LOSS). */
enum { PLAIN, WRITER, LOSS };

/* Segment s with parameters P; the memories from r->record (use = 1) or the
 * running FIFO (recorded, then the segment's memory pushed). */
static int segment_ref(ref_t *r, const double *P, const nn_batch *b, int64_t s, int use, int role)
{
    const nn_model *m = r->m;
    const nn_model_cfg *c = &m->cfg;
    int64_t B = r->B, C = r->C, L = c->hmt_segment, n = hmt_cached(c, s);
    size_t block = (size_t)(B * r->Nm * C);
    hmt_seg g = hmt_layout(c, r->N, s);
    const double *prompt = P + m->off_hmt_prompt;
    if (!use)
        memcpy(r->record + (size_t)s * block, r->run, sizeof *r->run * block);
    const double *M = r->record + (size_t)s * block;
    if (role == LOSS && n > 0) { /* the newest memory as segment s-1 writes it with P */
        memcpy(r->Mu, M, sizeof *M * block);
        for (int64_t i = 0; i < B; i++)
            memcpy(r->Mu + (i * r->Nm + n - 1) * C, r->fresh + i * C, sizeof *M * (size_t)C);
        M = r->Mu;
    }
    int64_t rows[2 * B > 0 ? 2 * B : 1];
    double *prompts = r->y; /* B copies of the prompt, until the backbone uses y */
    int rc = 0;
    if (g.has_p) { /* the summary window and the recall */
        for (int64_t i = 0; i < B; i++) {
            hmt_fill_summary(&g, s, L, b->tokens + i * r->N, r->tok + i * (g.jj + 1), g.jj + 1);
            rows[i] = g.jj;
            memcpy(prompts + i * C, prompt, sizeof *prompt * (size_t)C);
        }
        if ((rc = embed_ref(r, P, g.jj + 1, rows, prompts)) || (rc = backbone_ref(r, P, g.jj + 1)))
            return rc;
        for (int64_t i = 0; i < B; i++)
            memcpy(r->sq + i * C, r->hid + (i * (g.jj + 1) + g.jj) * C, sizeof *r->sq * (size_t)C);
        recall_ref(r, P, M, n);
    }
    for (int64_t i = 0; i < B; i++) {
        hmt_fill_window(&g, s, L, b->tokens + i * r->N, NULL, r->tok + i * g.rows, NULL, g.rows);
        memcpy(prompts + i * C, prompt, sizeof *prompt * (size_t)C);
    }
    for (int64_t i = 0; i < B; i++)
        rows[i] = g.p_row;
    if ((rc = embed_ref(r, P, g.rows, g.has_p ? rows : NULL, r->P)) != 0)
        return rc;
    for (int64_t i = 0; i < B; i++)
        rows[i] = g.t_row;
    if (g.has_t) /* embed_ref's replacement again, without re-embedding */
        for (int64_t i = 0; i < B; i++)
            memcpy(r->x + (i * g.rows + g.t_row) * C, prompts + i * C, sizeof *prompt * (size_t)C);
    if ((rc = backbone_ref(r, P, g.rows)) != 0)
        return rc;
    for (int64_t i = 0; role != WRITER && i < B; i++)
        for (int64_t t = 0; t < g.len; t++)
            memcpy(r->out + (i * r->N + s * L + t) * C, r->x + (i * g.rows + hmt_token_row(&g, t)) * C,
                   sizeof *r->x * (size_t)C);
    for (int64_t i = 0; role == WRITER && g.has_t && i < B; i++)
        memcpy(r->next + i * C, r->hid + (i * g.rows + g.t_row) * C, sizeof *r->hid * (size_t)C);
    if (use || !g.has_t)
        return 0;
    for (int64_t i = 0; i < B; i++) { /* m_s into the FIFO, oldest first */
        double *Mi = r->run + i * r->Nm * C;
        if (n == r->Nm)
            memmove(Mi, Mi + C, sizeof *Mi * (size_t)((r->Nm - 1) * C));
        memcpy(Mi + (n == r->Nm ? r->Nm - 1 : n) * C, r->hid + (i * g.rows + g.t_row) * C, sizeof *Mi * (size_t)C);
    }
    return 0;
}

static int pass_ref(ref_t *r, const double *P, const nn_batch *b, int use)
{
    int rc = 0;
    memset(r->run, 0, sizeof *r->run * (size_t)(r->B * r->Nm * r->C));
    for (int64_t s = 0; !rc && s < r->S; s++)
        if (use && r->m->cfg.hmt_unroll == 2) {
            if (!(rc = segment_ref(r, P, b, s, use, WRITER)) && !(rc = segment_ref(r, P, b, s, use, LOSS)))
                memcpy(r->fresh, r->next, sizeof *r->next * (size_t)(r->B * r->C));
        } else {
            rc = segment_ref(r, P, b, s, use, PLAIN);
        }
    return rc;
}

static int head_ref(const ref_t *r, const double *P, const nn_batch *b, double *loss)
{
    const nn_model *m = r->m;
    int64_t T = r->B * r->N, V = m->cfg.vocab;
    double *logits = calloc((size_t)(T * V), sizeof *logits), *h = calloc((size_t)(T * r->C), sizeof *h);
    int rc = logits && h ? 0 : attn_fail(ATTN_ENOMEM, "hmt reference: out of memory");
    if (!rc) {
        nn_norm_forward_ref(&m->nf, P, r->out, h, T);
        nn_dense_forward_ref(&m->h1, P, h, logits, T);
        rc = nn_xent_ref(logits, b->targets, T, V, NULL, loss);
    }
    free(logits), free(h);
    return rc;
}

int nn_hmt_loss_ref(const nn_model *m, const double *P, const double *P_state, const nn_batch *b, int64_t N,
                    double *loss)
{
    const nn_model_cfg *c = &m->cfg;
    if (c->dropout > 0)
        return attn_fail(ATTN_EINVAL, "hmt reference: expected dropout 0, found %g", c->dropout);
    ref_t r = {.m = m, .B = b->B, .N = N, .S = hmt_segments(c, N), .C = c->d_model, .Nm = c->hmt_memories,
               .W = nn_hmt_window(c)};
    size_t win = (size_t)(r.B * r.W * r.C), state = (size_t)(r.B * r.Nm * r.C) + 1;
    r.x = calloc(win, sizeof *r.x), r.h = calloc(win, sizeof *r.h), r.y = calloc(win, sizeof *r.y);
    r.hid = calloc(win, sizeof *r.hid), r.out = calloc((size_t)(r.B * N * r.C), sizeof *r.out);
    r.run = calloc(state, sizeof *r.run), r.record = calloc(state * (size_t)r.S, sizeof *r.record);
    r.sq = calloc((size_t)(r.B * r.C), sizeof *r.sq), r.q = calloc((size_t)(r.B * r.C), sizeof *r.q);
    r.keys = calloc(state, sizeof *r.keys), r.P = calloc((size_t)(r.B * r.C), sizeof *r.P);
    r.tok = calloc((size_t)(r.B * r.W), sizeof *r.tok);
    r.fresh = calloc((size_t)(r.B * r.C) + 1, sizeof *r.fresh), r.next = calloc((size_t)(r.B * r.C) + 1, sizeof *r.next);
    r.Mu = calloc(state, sizeof *r.Mu);
    int rc = r.x && r.h && r.y && r.hid && r.out && r.run && r.record && r.sq && r.q && r.keys && r.P && r.tok && r.fresh && r.next && r.Mu
                 ? 0 : attn_fail(ATTN_ENOMEM, "hmt reference: out of memory");
    /* the memories from P_state, then the loss from P on those memories */
    if (!rc && !(rc = pass_ref(&r, P_state, b, 0)) && P != P_state)
        rc = pass_ref(&r, P, b, 1);
    if (!rc)
        rc = head_ref(&r, P, b, loss);
    free(r.x), free(r.h), free(r.y), free(r.hid), free(r.out), free(r.run), free(r.record), free(r.sq), free(r.q);
    free(r.keys), free(r.P), free(r.tok), free(r.fresh), free(r.next), free(r.Mu);
    return rc;
}
