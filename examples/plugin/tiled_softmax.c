/* An example attnbench plugin: softmax attention written from scratch in
 * plain C against include/attnbench/plugin.h alone. The forward walks the
 * keys in tiles of TILE with a running maximum and sum (the online softmax
 * of FlashAttention, without its blocking of queries or SIMD); the backward
 * recomputes each row's probabilities from the saved logsumexp:
 *   dV_j += p_ij dO_i,  dP_ij = dO_i . V_j,  dS_ij = p_ij (dP_ij - dO_i . O_i),
 *   dQ_i = scale sum_j dS_ij K_j,  dK_j += scale dS_ij Q_i.
 * Full and causal masks, GQA, Nq != Nk; one thread.
 * Build: cc -O2 -fPIC -shared -I<attnbench>/include tiled_softmax.c -o tiled_softmax.so
 * Use:   attnbench --plugin ./tiled_softmax.so check --kernel tiled_softmax */
#include <attnbench/plugin.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TILE 64

static float *row(const attnbench_tensor *t, int64_t b, int64_t h, int64_t n)
{
    return t->data + b * t->sb + h * t->sh + n * t->sn;
}

/* Keys query i may see: [0, last) */
static int64_t keys_of(const attnbench_problem *p, int64_t i)
{
    if (!p->causal)
        return p->Nk;
    int64_t last = p->q_off + i - p->k_off + 1;
    return last < 0 ? 0 : last < p->Nk ? last : p->Nk;
}

static float dot(const float *x, const float *y, int64_t n)
{
    float s = 0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * y[d];
    return s;
}

/* One query row: tiles of keys, running max m and sum l, output rescaled
 * when the max moves. */
static float forward_row(const attnbench_problem *p, const attnbench_io *io, int64_t b, int64_t h, int64_t i)
{
    int64_t hk = h / (p->H / p->H_kv), n = keys_of(p, i);
    const float *q = row(&io->q, b, h, i);
    float *o = row(&io->o, b, h, i), s[TILE], m = -INFINITY, l = 0;
    memset(o, 0, sizeof(float) * (size_t)p->Dv);
    for (int64_t j0 = 0; j0 < n; j0 += TILE) {
        int64_t nt = n - j0 < TILE ? n - j0 : TILE;
        float mt = m;
        for (int64_t t = 0; t < nt; t++) {
            s[t] = (float)p->scale * dot(q, row(&io->k, b, hk, j0 + t), p->D);
            mt = s[t] > mt ? s[t] : mt;
        }
        float c = expf(m - mt); /* 0 on the first tile (m = -inf) */
        l *= c;
        for (int64_t d = 0; d < p->Dv; d++)
            o[d] *= c;
        for (int64_t t = 0; t < nt; t++) {
            float e = expf(s[t] - mt);
            const float *v = row(&io->v, b, hk, j0 + t);
            l += e;
            for (int64_t d = 0; d < p->Dv; d++)
                o[d] += e * v[d];
        }
        m = mt;
    }
    for (int64_t d = 0; l > 0 && d < p->Dv; d++)
        o[d] /= l;
    return l > 0 ? m + logf(l) : -INFINITY;
}

static int ts_forward(const attnbench_problem *p, const attnbench_io *io, void *ws, char *err, size_t n)
{
    (void)ws;
    if (p->Dv != p->D)
        return snprintf(err, n, "tiled_softmax: expected Dv = D, found %lld and %lld", (long long)p->Dv,
                        (long long)p->D), 1;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < p->H; h++)
            for (int64_t i = 0; i < p->Nq; i++)
                io->lse[(b * p->H + h) * p->Nq + i] = forward_row(p, io, b, h, i);
    return 0;
}

static void zero(const attnbench_tensor *t)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                memset(row(t, b, h, n), 0, sizeof(float) * (size_t)t->D);
}

/* Query row i's share of dQ, dK, dV from its probabilities p_ij = exp(s_ij - lse_i). */
static void backward_row(const attnbench_problem *p, const attnbench_io *io, const attnbench_grads *g, int64_t b,
                         int64_t h, int64_t i)
{
    int64_t hk = h / (p->H / p->H_kv), n = keys_of(p, i);
    float lse = io->lse[(b * p->H + h) * p->Nq + i];
    if (!(lse > -INFINITY))
        return; /* a row with no key: its gradients are 0 */
    const float *q = row(&io->q, b, h, i), *dO = row(&g->d_o, b, h, i), *o = row(&io->o, b, h, i);
    float *dq = row(&g->dq, b, h, i), delta = dot(dO, o, p->Dv), sc = (float)p->scale;
    for (int64_t j = 0; j < n; j++) {
        const float *k = row(&io->k, b, hk, j), *v = row(&io->v, b, hk, j);
        float pij = expf(sc * dot(q, k, p->D) - lse), ds = pij * (dot(dO, v, p->Dv) - delta);
        float *dk = row(&g->dk, b, hk, j), *dv = row(&g->dv, b, hk, j);
        for (int64_t d = 0; d < p->Dv; d++)
            dv[d] += pij * dO[d];
        for (int64_t d = 0; d < p->D; d++)
            dq[d] += sc * ds * k[d], dk[d] += sc * ds * q[d];
    }
}

static int ts_backward(const attnbench_problem *p, const attnbench_io *io, const attnbench_grads *g, void *ws,
                       char *err, size_t n)
{
    (void)ws, (void)err, (void)n;
    zero(&g->dq), zero(&g->dk), zero(&g->dv);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < p->H; h++)
            for (int64_t i = 0; i < p->Nq; i++)
                backward_row(p, io, g, b, h, i);
    return 0;
}

static const attnbench_plugin_kernel tiled_softmax = {
    .name = "tiled_softmax",
    .family = "plugin-example",
    .reference = "example plugin: online softmax over key tiles (FlashAttention's recurrence, plain C)",
    .notes = "one thread; tiles of 64 keys; backward recomputes P from the saved logsumexp",
    .flags = ATTNBENCH_EXACT | ATTNBENCH_CAUSAL | ATTNBENCH_GQA | ATTNBENCH_CROSS | ATTNBENCH_DETERMINISTIC,
    .forward = ts_forward,
    .backward = ts_backward,
};

int attnbench_plugin_abi(void) { return ATTNBENCH_PLUGIN_ABI; }

const attnbench_plugin_kernel *const *attnbench_plugin_kernels(void)
{
    static const attnbench_plugin_kernel *const list[] = {&tiled_softmax, NULL};
    return list;
}
