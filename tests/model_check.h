/* Shared checks of the attention block and whole models (Criterion
 * assertions inside): the block against its double twin through the
 * layer-check driver, and a model's fp32 gradients against central
 * differences of the double model (models/model_ref.h). */
#ifndef MODEL_CHECK_H
#define MODEL_CHECK_H

#include "models/model.h"

/* Binds and plans a block for cfg on (B, N, threads) and runs lc_check
 * (layers_check.h) with `seed`: the double backward is nn_attn_backward_ref
 * for softmax kernels, central differences for ref_forward kernels. */
void mc_check_block(const nn_attn_cfg *cfg, int64_t B, int64_t N, int threads, uint64_t seed, const char *what);
/* The same on a padded batch: sequence b is its first seq_len[b] rows (B). */
void mc_check_block_padded(const nn_attn_cfg *cfg, int64_t B, int64_t N, const int64_t *seq_len, int threads,
                           uint64_t seed, const char *what);

/* Initialises the model (seed 5) and plans it for (b->B, N) on 2 threads;
 * asserts the fp32 loss equals the double loss to 1e-5 and the fp32
 * gradients match central differences of the double loss to 1e-3 of their
 * largest, on one entry of every parameter tensor and `extra` random ones
 * (a folded model: with its buffers held at the initial parameters, the
 * truncated gradient it computes). */
void mc_gradcheck(const nn_model_cfg *c, const nn_batch *b, int64_t N, int extra, const char *what);
/* The same on an initialised model (the caller's weights), planned here and
 * left planned after the check's training forward and backward. */
void mc_gradcheck_model(nn_model *m, const nn_batch *b, int64_t N, int extra, const char *what);

/* A random LM batch of B sequences of N tokens from a vocabulary of V:
 * each target is the ignore index with probability 1/2, else a token. */
#define MC_MAX_TOKENS 64
typedef struct {
    int32_t tok[MC_MAX_TOKENS], tgt[MC_MAX_TOKENS];
    nn_batch b;
} mc_lm_batch;
void mc_lm_batch_make(mc_lm_batch *t, int64_t B, int64_t N, int64_t V, uint64_t seed);

/* Loss and predictions of a model (seed 5) planned for (b->B, N) on 2
 * threads, on batch b: for comparing two models that must agree. */
void mc_run(const nn_model_cfg *c, const nn_batch *b, int64_t N, double *loss, int32_t *pred);
/* Asserts two runs agree: losses to 1e-5 relative, the n predictions exactly. */
void mc_expect_same(double la, const int32_t *pa, double lb, const int32_t *pb, int64_t n, const char *what);

#endif
