/* The driver the recurrent memory kernels share (deltanet, titans, atlas):
 * one task per (batch, KV head) -- the memory depends only on K, V and the
 * gates, so it is trained once and read by the group's G query heads --
 * run in parallel with one scratch slot per thread, the sequence walked
 * chunk by chunk, and the block-checkpoint backward of the memories trained
 * by gradient steps (titans, atlas). The kernels supply the chunk and the
 * per-token steps as callbacks. */
#ifndef ATTN_MEM_DRIVER_H
#define ATTN_MEM_DRIVER_H

#include "attn.h"

/* Pointer to a 64-byte aligned sub-buffer of n floats, advancing *ws. */
static inline float *mem_take(float **ws, size_t n)
{
    float *p = *ws;
    *ws += (n + 15) / 16 * 16;
    return p;
}

static inline size_t mem_round(size_t n) { return (n + 15) / 16 * 16; }

/* fn(env, b, hk, state, ws) for every (batch, KV head) of a, in parallel on
 * a->threads threads (OpenBLAS single-threaded inside): state is the task's
 * task_floats floats of `state` (NULL when state is NULL), ws the calling
 * thread's slot of slot_floats floats in `slots`. Fixed task order: bitwise
 * the same results for any thread count. Returns the sum of fn's FLOPs. */
typedef double (*mem_task_fn)(const void *env, int64_t b, int64_t hk, float *state, float *ws);
long long mem_each_task(const attn_args *a, float *state, size_t task_floats, float *slots, size_t slot_floats,
                        mem_task_fn fn, const void *env);

/* One chunk of keys [j0, j0 + n) of a task: advances the state H and, when
 * write_o, writes the outputs; `fresh`: the chunk starts a sequence. Returns
 * its FLOPs. */
typedef double (*mem_chunk_fn)(const void *task, int64_t j0, int64_t n, int fresh, float *H, float *ws, int write_o);

/* Walks keys [j0, j1) chunk by chunk (chunks of C keys, cut at documents). */
double mem_walk_chunks(const attn_args *a, int64_t C, int64_t j0, int64_t j1, mem_chunk_fn chunk, const void *task,
                       float *H, float *ws, int write_o);

/* Sizes of a memory trained by gradient steps: the state [H; S] is two
 * rows x Dv matrices per task; chunks of C keys; the backward keeps one
 * checkpoint per block of whole chunks of at most max(block_min, C) keys and
 * every step's state inside one block. */
typedef struct {
    int64_t C, rows, Dv;
    int64_t block, n_blocks;
    size_t chunk_floats; /* per-thread scratch of one forward chunk */
    size_t vec_floats;   /* the kernel's own backward vectors */
    size_t bwd_floats;   /* per-thread backward buffers (0 without a planned backward) */
    size_t slot_floats;  /* chunk_floats + bwd_floats */
    size_t state_floats; /* B * H_kv * 2 rows Dv */
} mem_plan;

void mem_plan_make(mem_plan *m, const attn_args *a, int64_t C, int64_t block_min, int64_t rows, int64_t Dv,
                   size_t chunk_floats, size_t vec_floats);

/* Workspace of init: every task's state, then one slot per thread. */
void mem_plan_size_ctx(const mem_plan *m, int threads, attn_ctx *ctx);

/* The backward's buffers: checkpoints, one block's states, the adjoints GH =
 * dL/dH and GS = dL/dS of the current step (GS follows GH), GH0 (the
 * gradient of the chunk's start memory, joined to GH at the chunk's first
 * step), the state before a sequence (zero or the kernel's `fresh`), and
 * the kernel's own vectors. */
typedef struct {
    float *ckpt, *st, *GH, *GS, *GH0, *fresh, *vec;
    int64_t *starts;
    size_t dd; /* floats per [H; S], rounded */
} mem_bwd_bufs;

/* Largest kernel task the backward driver holds. */
#define MEM_TASK_BYTES 128

/* The kernel's part of the forward and the backward. */
typedef struct {
    /* task = the task of (b, hk), from `all`, the template every task shares */
    void (*place)(const void *all, int64_t b, int64_t hk, void *task);
    /* before a task's backward: zero the gradients its steps accumulate (NULL: none) */
    void (*start)(const void *task, const attn_grads *g);
    /* next = one step j from prev ([H; S] each), errors at the chunk's start memory H0 */
    void (*step)(const void *task, int64_t j, const float *prev, float *next, const float *H0, mem_bwd_bufs *u);
    /* undoes step j: writes the token's gradients, moves GH, GS to before it, adds to GH0 */
    void (*undo)(const void *task, const attn_grads *g, int64_t j, const float *prev, const float *next,
                 const float *H0, mem_bwd_bufs *u);
    mem_chunk_fn chunk;
    /* the state [H; S] before a sequence, when not zero (NULL: zero) */
    void (*fresh)(const void *task, float *state);
    /* FLOPs of one task's replayed and undone steps (the checkpoint pass is counted here) */
    double (*steps_flops)(const void *task);
} mem_steps;

/* The backward of every (batch, KV head), one per-thread slot each in
 * `slots`: the chunked forward stores [H; S] before every block; blocks are
 * visited last to first, their states recomputed step by step from the
 * checkpoint, then undone in reverse. Returns the FLOPs. */
long long mem_backward(const attn_args *a, const mem_plan *m, const mem_steps *s, const void *all,
                       const attn_grads *g, float *slots);

/* The forward of every (batch, KV head) in the workspace of mem_plan_size_ctx:
 * each task's keys chunk by chunk (s->chunk) from a fresh state, its final
 * [H; S] left in the task's state. Returns the FLOPs. */
long long mem_forward(const attn_args *a, const mem_plan *m, const mem_steps *s, const void *all, float *workspace);

/* Fails with a message naming kernel `name` unless io (and g, when not NULL)
 * carry the three gate inputs (beta, gate, router) and their gradients. */
int mem_inputs_present(const char *name, const attn_io *io, const attn_grads *g);

/* The double references' walk over keys: at key t, a sequence start resets
 * the state [W; S] (2 n doubles) to [init; 0] (init NULL: zero), and a
 * chunk start (*chunk_end == t, then moved to the chunk's end) copies W into W0, the memory at which the
 * chunk's gradients are taken. */
void mem_ref_boundaries(const attn_args *a, int64_t t, int64_t C, int64_t *chunk_end, double *WS, size_t n,
                        const double *init, double *W0);

#endif
