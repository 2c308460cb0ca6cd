/* 16-bit attention operands around an fp32 model (attn_lowp.h). */
#include "attn_lowp.h"

#include "common/alloc.h"

#include <string.h>

int nn_attn_lowp_alloc(nn_attn_lowp *b, attn_dtype t, int backward, size_t nq, size_t nk)
{
    memset(b, 0, sizeof *b);
    b->t = t;
    if (t == ATTN_DT_FP32)
        return 0;
    uint16_t **side[8] = {&b->q, &b->o, &b->k, &b->v, &b->d_o, &b->dq, &b->dk, &b->dv};
    size_t n[8] = {nq, nq, nk, nk, nq, nq, nk, nk};
    for (int i = 0; i < (backward ? 8 : 4); i++)
        if (!(*side[i] = attn_alloc(sizeof(uint16_t) * n[i]))) {
            nn_attn_lowp_free(b);
            return ATTN_ENOMEM;
        }
    return 0;
}

void nn_attn_lowp_free(nn_attn_lowp *b)
{
    attn_free(b->q), attn_free(b->k), attn_free(b->v), attn_free(b->o);
    attn_free(b->d_o), attn_free(b->dq), attn_free(b->dk), attn_free(b->dv);
    attn_dtype t = b->t;
    memset(b, 0, sizeof *b);
    b->t = t;
}

/* The 16-bit twin of x: the same shape and strides over p. */
static attn_tensor_h twin(uint16_t *p, const attn_tensor *x)
{
    return (attn_tensor_h){.data = p, .B = x->B, .H = x->H, .N = x->N, .D = x->D, .sb = x->sb, .sh = x->sh,
                           .sn = x->sn};
}

/* The block's tensors are dense (B, N, heads, D) buffers: one call per tensor. */
static int64_t values(const attn_tensor *x) { return x->B * x->N * x->H * x->D; }

static attn_tensor_h narrow(attn_dtype t, const attn_tensor *x, uint16_t *p)
{
    attn_narrow(t, x->data, values(x), p);
    return twin(p, x);
}

void nn_attn_lowp_inputs(nn_attn_lowp *b, attn_io *io, int with_o)
{
    if (b->t == ATTN_DT_FP32)
        return;
    io->qh = narrow(b->t, &io->q, b->q), io->kh = narrow(b->t, &io->k, b->k), io->vh = narrow(b->t, &io->v, b->v);
    io->oh = with_o ? narrow(b->t, &io->o, b->o) : twin(b->o, &io->o);
}

void nn_attn_lowp_output(const nn_attn_lowp *b, const attn_io *io)
{
    if (b->t != ATTN_DT_FP32)
        attn_widen(b->t, b->o, values(&io->o), io->o.data);
}

void nn_attn_lowp_grads(nn_attn_lowp *b, attn_grads *g)
{
    if (b->t == ATTN_DT_FP32)
        return;
    g->d_oh = narrow(b->t, &g->d_o, b->d_o);
    g->dqh = twin(b->dq, &g->dq), g->dkh = twin(b->dk, &g->dk), g->dvh = twin(b->dv, &g->dv);
}

void nn_attn_lowp_grads_out(const nn_attn_lowp *b, const attn_grads *g)
{
    if (b->t == ATTN_DT_FP32)
        return;
    attn_widen(b->t, b->dq, values(&g->dq), g->dq.data);
    attn_widen(b->t, b->dk, values(&g->dk), g->dk.data);
    attn_widen(b->t, b->dv, values(&g->dv), g->dv.data);
}
