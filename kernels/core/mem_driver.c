/* The recurrent memory kernels' shared driver (mem_driver.h). */
#include "mem_driver.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

long long mem_each_task(const attn_args *a, float *state, size_t task_floats, float *slots, size_t slot_floats,
                        mem_task_fn fn, const void *env)
{
    int64_t tasks = a->B * a->H_kv;
    long long flops = 0;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++) {
        float *st = state ? state + (size_t)t * task_floats : NULL;
        flops += (long long)fn(env, t / a->H_kv, t % a->H_kv, st, slots + (size_t)omp_get_thread_num() * slot_floats);
    }
    return flops;
}

double mem_walk_chunks(const attn_args *a, int64_t C, int64_t j0, int64_t j1, mem_chunk_fn chunk, const void *task,
                       float *H, float *ws, int write_o)
{
    double flops = 0;
    for (int64_t j = j0, e; j < j1; j = e) {
        e = attn_key_block_end(a, j, C);
        flops += chunk(task, j, e - j, attn_key_starts_seq(a, j), H, ws, write_o);
    }
    return flops;
}

void mem_plan_make(mem_plan *m, const attn_args *a, int64_t C, int64_t block_min, int64_t rows, int64_t Dv,
                   size_t chunk_floats, size_t vec_floats)
{
    memset(m, 0, sizeof *m);
    m->C = C, m->rows = rows, m->Dv = Dv;
    m->block = C > block_min ? C : block_min;
    m->chunk_floats = chunk_floats, m->vec_floats = mem_round(vec_floats);
    if (a->backward) {
        for (int64_t j = 0; j < a->Nk; j = attn_key_chunks_end(a, j, C, m->block))
            m->n_blocks++;
        size_t st = mem_round((size_t)(2 * rows * Dv));
        /* checkpoints, the block's states, [GH; GS], GH0, the fresh state; the kernel's vectors; block starts (int64) */
        m->bwd_floats = st * (size_t)(m->n_blocks + m->block + 1 + 3) + m->vec_floats +
                        mem_round((size_t)(2 * (m->n_blocks + 1)));
    }
    m->slot_floats = m->chunk_floats + m->bwd_floats;
    m->state_floats = (size_t)(a->B * a->H_kv * 2 * rows * Dv);
}

void mem_plan_size_ctx(const mem_plan *m, int threads, attn_ctx *ctx)
{
    ctx->workspace_bytes = sizeof(float) * (mem_round(m->state_floats) + m->slot_floats * (size_t)threads);
    ctx->state_bytes_used = sizeof(float) * m->state_floats;
}

static mem_bwd_bufs take_bufs(const mem_plan *m, float *ws)
{
    mem_bwd_bufs u;
    size_t n = (size_t)(m->rows * m->Dv);
    u.dd = mem_round(2 * n);
    u.ckpt = mem_take(&ws, u.dd * (size_t)m->n_blocks);
    u.st = mem_take(&ws, u.dd * (size_t)(m->block + 1));
    u.GH = mem_take(&ws, u.dd), u.GS = u.GH + n, u.GH0 = mem_take(&ws, u.dd);
    u.fresh = mem_take(&ws, u.dd);
    memset(u.fresh, 0, sizeof(float) * u.dd);
    u.vec = mem_take(&ws, m->vec_floats);
    u.starts = (int64_t *)mem_take(&ws, (size_t)(2 * (m->n_blocks + 1)));
    return u;
}

/* Pass 1: [H; S] before every block, by the chunked forward. Returns FLOPs. */
static double checkpoints(const mem_plan *m, const attn_args *a, const mem_steps *s, const void *task,
                          float *chunk_ws, mem_bwd_bufs *u)
{
    size_t n2 = (size_t)(2 * m->rows * m->Dv);
    float *H = u->st; /* free until pass 2 */
    double flops = 0;
    int64_t n = 0;
    for (int64_t j = 0, e; j < a->Nk; j = e, n++) {
        e = attn_key_chunks_end(a, j, m->C, m->block);
        u->starts[n] = j;
        if (attn_key_starts_seq(a, j))
            memset(H, 0, sizeof(float) * n2);
        memcpy(u->ckpt + (size_t)n * u->dd, H, sizeof(float) * n2);
        flops += mem_walk_chunks(a, m->C, j, e, s->chunk, task, H, chunk_ws, 0);
    }
    u->starts[n] = a->Nk;
    return flops;
}

/* The state before step j of the block starting at jb (the fresh state at a sequence start). */
static float *state_before(const attn_args *a, mem_bwd_bufs *u, int64_t jb, int64_t j)
{
    return attn_key_starts_seq(a, j) ? u->fresh : u->st + (size_t)(j - jb) * u->dd;
}

/* Undoes steps [j0, j1) of one chunk inside the block starting at jb, in reverse. */
static void chunk_backward(const mem_plan *m, const attn_args *a, const mem_steps *s, const void *task,
                           const attn_grads *g, int64_t jb, int64_t j0, int64_t j1, mem_bwd_bufs *u)
{
    size_t n = (size_t)(m->rows * m->Dv);
    const float *H0 = state_before(a, u, jb, j0);
    for (int64_t j = j1 - 1; j >= j0; j--) {
        s->undo(task, g, j, state_before(a, u, jb, j), u->st + (size_t)(j + 1 - jb) * u->dd, H0, u);
        if (j == j0) { /* the chunk's errors were taken at H_{j0-1}: its gradient joins GH */
            cblas_saxpy((int)n, 1.0f, u->GH0, 1, u->GH, 1);
            memset(u->GH0, 0, sizeof(float) * n);
        }
        if (attn_key_starts_seq(a, j)) /* the memory before a sequence is a constant, not an input */
            memset(u->GH, 0, sizeof(float) * 2 * n);
    }
}

/* One task's backward in its slot ws. Returns the FLOPs of the checkpoint pass. */
static double backward_task(const mem_plan *m, const attn_args *a, const mem_steps *s, const void *task,
                            const attn_grads *g, float *ws)
{
    mem_bwd_bufs u = take_bufs(m, ws + m->chunk_floats);
    if (s->fresh)
        s->fresh(task, u.fresh);
    double flops = checkpoints(m, a, s, task, ws, &u);
    size_t n2 = (size_t)(2 * m->rows * m->Dv);
    memset(u.GH, 0, sizeof(float) * n2);
    memset(u.GH0, 0, sizeof(float) * n2 / 2);
    for (int64_t n = m->n_blocks - 1; n >= 0; n--) {
        int64_t jb = u.starts[n], je = u.starts[n + 1];
        memcpy(u.st, u.ckpt + (size_t)n * u.dd, sizeof(float) * n2);
        for (int64_t c0 = jb, c1; c0 < je; c0 = c1) {
            c1 = attn_key_block_end(a, c0, m->C);
            const float *H0 = state_before(a, &u, jb, c0);
            for (int64_t j = c0; j < c1; j++)
                s->step(task, j, state_before(a, &u, jb, j), u.st + (size_t)(j + 1 - jb) * u.dd, H0, &u);
        }
        for (int64_t c1 = je; c1 > jb;) { /* chunks of the block last to first */
            int64_t c0 = jb;
            while (attn_key_block_end(a, c0, m->C) < c1)
                c0 = attn_key_block_end(a, c0, m->C);
            chunk_backward(m, a, s, task, g, jb, c0, c1, &u);
            c1 = c0;
        }
    }
    return flops;
}

/* One task of the forward (g NULL: its chunks from a fresh state into
 * `state`) or of the backward (g: in its slot). */
typedef struct {
    const attn_args *a;
    const mem_plan *m;
    const mem_steps *s;
    const void *all;
    const attn_grads *g;
} task_env;

static double task_cb(const void *env, int64_t b, int64_t hk, float *state, float *ws)
{
    const task_env *e = env;
    _Alignas(16) unsigned char task[MEM_TASK_BYTES];
    e->s->place(e->all, b, hk, task);
    if (!e->g)
        return mem_walk_chunks(e->a, e->m->C, 0, e->a->Nk, e->s->chunk, task, state, ws, 1);
    if (e->s->start)
        e->s->start(task, e->g);
    return backward_task(e->m, e->a, e->s, task, e->g, ws) + e->s->steps_flops(task);
}

long long mem_backward(const attn_args *a, const mem_plan *m, const mem_steps *s, const void *all,
                       const attn_grads *g, float *slots)
{
    task_env env = {a, m, s, all, g};
    return mem_each_task(a, NULL, 0, slots, m->slot_floats, task_cb, &env);
}

long long mem_forward(const attn_args *a, const mem_plan *m, const mem_steps *s, const void *all, float *workspace)
{
    task_env env = {a, m, s, all, NULL};
    size_t task_floats = (size_t)(2 * m->rows * m->Dv);
    return mem_each_task(a, workspace, task_floats, workspace + mem_round(m->state_floats), m->slot_floats, task_cb,
                         &env);
}

int mem_inputs_present(const char *name, const attn_io *io, const attn_grads *g)
{
    if (!io->beta.data || !io->gate.data || !io->router.data)
        return attn_fail(ATTN_EINVAL, "kernel '%s': expected io.beta, io.gate and io.router, found NULL", name);
    if (g && (!g->dbeta.data || !g->dgate.data || !g->drouter.data))
        return attn_fail(ATTN_EINVAL, "kernel '%s': expected dbeta, dgate and drouter, found NULL", name);
    return 0;
}

void mem_ref_boundaries(const attn_args *a, int64_t t, int64_t C, int64_t *chunk_end, double *WS, size_t n,
                        const double *init, double *W0)
{
    if (attn_key_starts_seq(a, t)) {
        memset(WS, 0, sizeof(double) * 2 * n);
        if (init)
            memcpy(WS, init, sizeof(double) * n);
    }
    if (t == *chunk_end) {
        *chunk_end = attn_key_block_end(a, t, C);
        memcpy(W0, WS, sizeof(double) * n);
    }
}
