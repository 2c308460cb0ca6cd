/* The per-row sparse path of `flash` (docs/kernels/flash.md, "Per-row
 * path"): for masks whose allowed keys differ from row to row with no
 * structure (random), where the union of a block of rows' keys is nearly
 * every key and the gathered path computes at dense cost.
 *
 * At init the mask's row predicate is packed into one bit per (query row,
 * key). The forward walks the keys in tiles whose K and V rows stay in the
 * L2 cache, in two passes over a block of query rows per tile: the scores
 * pass lists each row's kept keys of the tile from its bits, computes only
 * their scores (dot products with the K rows, 16 keys at a time) and the
 * online-softmax step, keeping keys and probabilities per row; the P V pass
 * then adds each row's kept V rows into its accumulator. Executed work is
 * 4 D FLOPs per allowed pair. */
#ifndef ATTN_FLASH_ROWS_H
#define ATTN_FLASH_ROWS_H

#include "flash_internal.h"

typedef struct flash_rows {
    int64_t n_layouts;   /* B when the mask varies by batch entry, else 1 */
    int64_t n_heads;     /* H when the mask varies by head, else 1 */
    int64_t words;       /* 64-bit words per query row, over all key tiles */
    uint64_t *bits;      /* [layout][head][key tile][Nq][tile / 64]: bit j of a row's words set if
                          * it attends key j of the tile (tile-major: a task's bits of one tile are
                          * contiguous) */
    int64_t tile, rb;    /* keys per tile (a multiple of 64), query rows per task */
    double work;         /* allowed pairs over the stored layouts and all H query heads */
    double row_tiles;    /* (query row, key tile) visits over the same */
} flash_rows;

/* Keys per tile: K and V rows of a tile take at most 128 KiB, well inside
 * a core's L2 on the machines measured (docs/kernels/flash.md). */
int64_t flash_rows_tile(int64_t D);

/* Query rows per head in one task: a tile's K and V rows, brought into L2
 * once, serve every row of the task, whose scaled queries and accumulators
 * (2 * G * rb * D floats) take at most 256 KiB. */
int64_t flash_rows_rb(int64_t G, int64_t D);

/* Floats of one thread's workspace slot for the per-row forward. */
int64_t flash_rows_slot_floats(const attn_args *a, const flash_plan *pl);

/* Packs the mask of a into bits with up to a->threads threads. With
 * max_bytes > 0 a bitmap that would pass it is not built: *out = NULL, 0. */
int flash_rows_build(const attn_args *a, double max_bytes, flash_rows **out);
void flash_rows_free(flash_rows *r);

/* The per-row forward (O and lse of every row). */
void flash_rows_forward(const attn_ctx *ctx, const flash_plan *pl, const flash_rows *r, const attn_io *io);

/* The inner loops, in the variants this build compiled (tests compare them
 * with the plain one): */
typedef enum { FLASH_ROWS_PLAIN = 0, FLASH_ROWS_AVX2, FLASH_ROWS_AVX512 } flash_rows_isa;

/* The widest variant compiled in; 1 if variant `isa` is compiled in. */
flash_rows_isa flash_rows_best_isa(void);
int flash_rows_has_isa(flash_rows_isa isa);

/* s[k] = <q, K[idx[k]]> for k < n (K rows at stride sn, q of D floats
 * padded with zeros to a multiple of 16, 64-byte aligned). idx must hold
 * round16(n) entries: those past n name any valid row (their scores are
 * computed and not used), and s round16(n) floats. */
void flash_rows_dot(flash_rows_isa isa, const float *q, const float *K, int64_t sn, const int32_t *idx, int64_t n,
                    int64_t D, float *s);

/* acc = alpha * acc + sum_k p[k] * V[idx[k]] over k < n, k ascending (acc of
 * D floats, 64-byte aligned). */
void flash_rows_pv(flash_rows_isa isa, float *acc, float alpha, const float *p, const float *V, int64_t sn,
                   const int32_t *idx, int64_t n, int64_t D);

/* One online-softmax step of a row over its n scores s (s holds round16(n)
 * floats, those past n equal to s[0]): m' = max(m, max s), s = exp(s - m')
 * (0 past n), l = alpha * l + sum s, m = m'; returns alpha = exp(m - m'). */
float flash_rows_softmax(flash_rows_isa isa, float *s, int64_t n, float *m, float *l);

/* idx[n..] = j0 + the positions of the set bits of words[0..nw), ascending;
 * returns how many were written. */
int64_t flash_rows_list(const uint64_t *words, int64_t nw, int32_t j0, int32_t *idx);

#endif
